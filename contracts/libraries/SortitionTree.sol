// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title SortitionTree: weighted random draws without replacement in O(log n)
/// @notice Slots numbered 1, 2, ... each belong to an owner and carry a weight (below 2**96); a
/// draw picks a slot with probability proportional to its weight, never one of the slots it is
/// told to skip. Stored as a Fenwick (binary indexed) tree, so that setting a weight, a prefix
/// sum and a draw each read or write at most log2(size) + 1 nodes, whatever the number of slots.
library SortitionTree {
    /// @dev A slot's owner and weight, in one storage word.
    struct Leaf {
        address owner;
        uint96 weight;
    }

    struct Tree {
        uint256 size; // slots in use: 1..size
        uint256 total; // the sum of all weights
        mapping(uint256 slot => uint256) nodes; // node i: the weights of slots (i - lowbit(i), i]
        mapping(uint256 slot => Leaf) leaves;
    }

    /// @dev A slot a draw skips: where its weight starts on the line of cumulative weights.
    struct Gap {
        uint256 start;
        uint256 weight;
    }

    // ------------------------------------------------------------------ writes

    /// @notice Adds a slot of weight 0 owned by `owner`; returns its number.
    function append(Tree storage tree, address owner) internal returns (uint256 slot) {
        slot = tree.size + 1;
        tree.leaves[slot].owner = owner;
        uint256 low = slot & (~slot + 1);
        // The new node covers (slot - low, slot]: the weights of slots already there.
        if (low > 1) {
            uint256 covered = prefix(tree, slot - 1) - prefix(tree, slot - low);
            if (covered != 0) tree.nodes[slot] = covered;
        }
        tree.size = slot;
    }

    /// @notice Sets the weight of an existing slot.
    function set(Tree storage tree, uint256 slot, uint96 weight) internal {
        uint256 old = tree.leaves[slot].weight;
        if (old == weight) return;
        tree.leaves[slot].weight = weight;
        uint256 size = tree.size;
        if (weight > old) {
            uint256 delta = weight - old;
            tree.total += delta;
            for (uint256 i = slot; i <= size; i += i & (~i + 1)) {
                tree.nodes[i] += delta;
            }
        } else {
            uint256 delta = old - weight;
            tree.total -= delta;
            for (uint256 i = slot; i <= size; i += i & (~i + 1)) {
                tree.nodes[i] -= delta;
            }
        }
    }

    // ------------------------------------------------------------------ reads

    /// @notice The sum of the weights of slots 1..slot.
    function prefix(Tree storage tree, uint256 slot) internal view returns (uint256 sum) {
        for (uint256 i = slot; i > 0; i -= i & (~i + 1)) {
            sum += tree.nodes[i];
        }
    }

    /// @notice The slot whose weight covers `point` on the line of cumulative weights: the
    /// smallest slot with prefix(slot) > point. `point` must be below the total.
    function find(Tree storage tree, uint256 point) internal view returns (uint256) {
        uint256 size = tree.size;
        uint256 pos = 0;
        uint256 step = 1;
        while (step <= size >> 1) {
            step <<= 1;
        }
        for (; step != 0; step >>= 1) {
            uint256 next = pos + step;
            if (next <= size) {
                uint256 node = tree.nodes[next];
                if (node <= point) {
                    pos = next;
                    point -= node;
                }
            }
        }
        return pos + 1;
    }

    /// @notice Up to `count` distinct slots drawn by weight without replacement, from `seed`,
    /// never one of `skip` (zeros and repeats in it are ignored). Fewer when the weight left runs out.
    /// @dev The k-th draw is keccak(seed, k) modulo the weight not yet drawn or skipped, mapped
    /// past the skipped slots' stretches of the cumulative line (kept sorted by start).
    function draw(Tree storage tree, bytes32 seed, uint256 count, uint256[] memory skip)
        internal
        view
        returns (uint256[] memory drawn)
    {
        Gap[] memory gaps = new Gap[](skip.length + count);
        uint256 gapCount;
        uint256 skipped;
        for (uint256 i; i < skip.length; ++i) {
            (gapCount, skipped) = _addGap(tree, gaps, gapCount, skipped, skip[i]);
        }
        drawn = new uint256[](count);
        uint256 n;
        for (; n < count; ++n) {
            uint256 left = tree.total - skipped;
            if (left == 0) break;
            uint256 point = uint256(keccak256(abi.encode(seed, n))) % left;
            for (uint256 g; g < gapCount && point >= gaps[g].start; ++g) {
                point += gaps[g].weight;
            }
            uint256 slot = find(tree, point);
            drawn[n] = slot;
            (gapCount, skipped) = _addGap(tree, gaps, gapCount, skipped, slot);
        }
        // Trim to the slots actually drawn.
        assembly ("memory-safe") {
            mstore(drawn, n)
        }
    }

    // ------------------------------------------------------------------ internal

    /// @dev Inserts `slot`'s stretch into the sorted gaps, unless it is 0, weightless or there already.
    function _addGap(Tree storage tree, Gap[] memory gaps, uint256 gapCount, uint256 skipped, uint256 slot)
        private
        view
        returns (uint256, uint256)
    {
        if (slot == 0 || slot > tree.size) return (gapCount, skipped);
        uint256 weight = tree.leaves[slot].weight;
        if (weight == 0) return (gapCount, skipped);
        uint256 start = prefix(tree, slot - 1);
        uint256 at = gapCount;
        for (uint256 g; g < gapCount; ++g) {
            // Equal starts with a positive weight are the same slot.
            if (gaps[g].start == start) return (gapCount, skipped);
            if (gaps[g].start > start) {
                at = g;
                break;
            }
        }
        for (uint256 g = gapCount; g > at; --g) {
            gaps[g] = gaps[g - 1];
        }
        gaps[at] = Gap(start, weight);
        return (gapCount + 1, skipped + weight);
    }
}
