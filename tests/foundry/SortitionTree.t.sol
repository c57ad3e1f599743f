// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {SortitionTree} from "../../contracts/libraries/SortitionTree.sol";

/// @title The jury pool's tree against a plain array of weights (forge fuzz tests)
/// @notice Random appends and weight changes; after each, every prefix sum, `find` and a draw
/// with exclusions equal what a linear walk over the array gives.
contract SortitionTreeTest {
    using SortitionTree for SortitionTree.Tree;

    SortitionTree.Tree internal tree;
    uint256[] internal plain; // plain[i]: weight of slot i + 1

    error Broken(string what, uint256 left, uint256 right);

    function testFuzz_matchesALinearWalk(uint256 seed) public {
        for (uint256 step; step < 60; ++step) {
            seed = uint256(keccak256(abi.encode(seed, step)));
            if (plain.length == 0 || seed % 4 == 0) {
                tree.append(address(this));
                plain.push(0);
            }
            uint256 slot = 1 + (seed >> 8) % plain.length;
            // Weights from 0 to large, with repeats and zeros.
            uint96 weight = (seed >> 40) % 3 == 0 ? 0 : uint96((seed >> 64) % 1e24);
            tree.set(slot, weight);
            plain[slot - 1] = weight;
            _check(seed);
        }
    }

    function test_drawsSkipExcludedAndDrawnSlots() public {
        for (uint256 i; i < 9; ++i) {
            tree.append(address(this));
            plain.push(0);
            tree.set(i + 1, uint96(10 + i));
            plain[i] = 10 + i;
        }
        uint256[] memory skip = new uint256[](3);
        (skip[0], skip[1], skip[2]) = (2, 2, 9); // a repeat, and the last slot
        uint256[] memory drawn = tree.draw(keccak256("seed"), 20, skip);
        if (drawn.length != 7) revert Broken("draws left over", drawn.length, 7);
        for (uint256 i; i < drawn.length; ++i) {
            if (drawn[i] == 2 || drawn[i] == 9) revert Broken("drew an excluded slot", drawn[i], i);
            for (uint256 j; j < i; ++j) {
                if (drawn[i] == drawn[j]) revert Broken("drew a slot twice", drawn[i], j);
            }
        }
    }

    function _check(uint256 seed) internal view {
        uint256 sum;
        for (uint256 i; i < plain.length; ++i) {
            sum += plain[i];
            if (tree.prefix(i + 1) != sum) revert Broken("prefix sum", tree.prefix(i + 1), sum);
        }
        if (tree.total != sum) revert Broken("total", tree.total, sum);
        if (sum == 0) return;
        uint256 point = seed % sum;
        if (tree.find(point) != _linearFind(point, new uint256[](0))) revert Broken("find", tree.find(point), point);

        uint256[] memory skip = new uint256[](2);
        skip[0] = 1 + (seed >> 100) % plain.length;
        skip[1] = (seed >> 120) % (plain.length + 2); // 0, or past the end, sometimes
        uint256 count = 1 + (seed >> 140) % 6;
        uint256[] memory drawn = tree.draw(bytes32(seed), count, skip);
        uint256[] memory expected = _linearDraw(bytes32(seed), count, skip);
        if (drawn.length != expected.length) revert Broken("draw length", drawn.length, expected.length);
        for (uint256 i; i < drawn.length; ++i) {
            if (drawn[i] != expected[i]) revert Broken("draw", drawn[i], expected[i]);
        }
    }

    /// @dev The rule: the k-th pick is keccak(seed, k) modulo the weight left, walked along the
    /// slots in order past the skipped and already picked ones.
    function _linearDraw(bytes32 seed, uint256 count, uint256[] memory skip) internal view returns (uint256[] memory out) {
        uint256[] memory taken = new uint256[](skip.length + count);
        uint256 takenCount;
        for (uint256 i; i < skip.length; ++i) {
            taken[takenCount++] = skip[i];
        }
        out = new uint256[](count);
        uint256 n;
        for (; n < count; ++n) {
            uint256 left;
            for (uint256 s = 1; s <= plain.length; ++s) {
                if (!_in(taken, takenCount, s)) left += plain[s - 1];
            }
            if (left == 0) break;
            uint256 point = uint256(keccak256(abi.encode(seed, n))) % left;
            uint256[] memory prefix = new uint256[](takenCount);
            for (uint256 i; i < takenCount; ++i) {
                prefix[i] = taken[i];
            }
            uint256 slot = _linearFind(point, prefix);
            out[n] = slot;
            taken[takenCount++] = slot;
        }
        assembly ("memory-safe") {
            mstore(out, n)
        }
    }

    function _linearFind(uint256 point, uint256[] memory skip) internal view returns (uint256) {
        for (uint256 s = 1; s <= plain.length; ++s) {
            if (_in(skip, skip.length, s)) continue;
            if (point < plain[s - 1]) return s;
            point -= plain[s - 1];
        }
        revert Broken("point beyond the total", point, 0);
    }

    function _in(uint256[] memory list, uint256 count, uint256 value) internal pure returns (bool) {
        for (uint256 i; i < count; ++i) {
            if (list[i] == value) return true;
        }
        return false;
    }
}
