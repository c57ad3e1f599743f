// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title What the escrow reads from the relayer registry
/// @notice Whether an account is a bonded relayer allowed to serve calls right now.
interface IRelayerRegistry {
    /// @notice True when `relayer` is registered, not unbonding, and bonded at least `minBond()`.
    function isActive(address relayer) external view returns (bool);
}
