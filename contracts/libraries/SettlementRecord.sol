// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title SettlementRecord: what the escrow keeps of a settled on-chain call, in 240 bits
/// @notice A settled request keeps one storage word: its status and the record of its
/// settlement, keccak-256 of the call's facts truncated to 240 bits. Whoever shows facts that
/// hash to it (the dispute court's challenger) proves that the call settled with them.
library SettlementRecord {
    /// @notice The facts of a settled on-chain call.
    struct Facts {
        uint256 requestId; // the caller is its high 160 bits
        uint256 modelId;
        uint32 version;
        uint256 price;
        bytes32 inputHash;
        bytes32 outputHash;
        address relayer; // who signed the attestation that settled it
        uint64 settledAt; // the settlement block's timestamp
    }

    /// @dev The low 240 bits of a request's first storage slot; the status lies above them.
    uint256 internal constant MASK = (1 << 240) - 1;

    /// @notice The record of `facts`: keccak256(abi.encode(every field, in order)), top 240 bits.
    function hash(Facts memory facts) internal pure returns (uint256) {
        return uint256(
            keccak256(
                abi.encode(
                    facts.requestId,
                    facts.modelId,
                    facts.version,
                    facts.price,
                    facts.inputHash,
                    facts.outputHash,
                    facts.relayer,
                    facts.settledAt
                )
            )
        ) >> 16;
    }
}
