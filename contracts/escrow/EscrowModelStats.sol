// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EscrowBase} from "./EscrowBase.sol";

/// @title EscrowModelStats: how many calls each model settled, and what they paid
/// @notice Counted at settlement, on chain and by receipt alike (EscrowRequests, EscrowReceipts);
/// every counted call paid at least 1 base unit.
abstract contract EscrowModelStats is EscrowBase {
    // ------------------------------------------------------------------ storage

    /// @dev Full words: a receipt may add up to 2**64 - 1 calls and 2**160 - 1 tokens at once, so
    /// packed counters could be pushed to overflow, and a checked overflow would block every
    /// later settlement of the model.
    struct ModelStats {
        uint256 calls;
        uint256 revenue;
    }

    // Written through storage pointers, which Slither does not follow.
    // slither-disable-next-line uninitialized-state
    mapping(uint256 modelId => ModelStats) internal _stats;

    // ------------------------------------------------------------------ external

    /// @notice Settled calls of a model and the total price they paid.
    /// @param modelId Any model id.
    /// @return calls Its settled calls.
    /// @return revenue The total price they paid.
    function modelStats(uint256 modelId) external view returns (uint256 calls, uint256 revenue) {
        ModelStats storage stats = _stats[modelId];
        return (stats.calls, stats.revenue);
    }
}
