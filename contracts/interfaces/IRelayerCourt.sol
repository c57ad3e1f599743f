// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title What the dispute court asks of the relayer registry
/// @notice Holding and slashing bonds, and drawing juries from the relayers weighted by bond.
interface IRelayerCourt {
    /// @notice Seconds between `beginUnbond` and `withdrawBond`.
    function unbondDelay() external view returns (uint64);

    /// @notice The smallest bond of an active relayer, in force now.
    function minBond() external view returns (uint256);

    /// @notice Holds the bonds of `accounts` for one more open dispute (not withdrawable meanwhile).
    function holdBonds(address[] calldata accounts) external;

    /// @notice Ends one hold of each of `accounts`' bonds.
    function releaseBonds(address[] calldata accounts) external;

    /// @notice Takes up to `amount` of `account`'s bond and sends it to the court.
    /// @return taken What was taken.
    function slash(address account, uint256 amount) external returns (uint256 taken);

    /// @notice Announces a jury draw: pool weights stay frozen until `drawDone`.
    function drawPending() external;

    /// @notice A draw announced with `drawPending` was made.
    function drawDone() external;

    /// @notice Up to `seats` distinct relayers drawn by weight from `seed`, none of `excluded`.
    function drawJurors(bytes32 seed, uint256 seats, address[] calldata excluded)
        external
        view
        returns (address[] memory jurors);
}
