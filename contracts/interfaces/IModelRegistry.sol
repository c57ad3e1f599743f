// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title What the escrow reads from the model registry
/// @notice The terms of a call and the payees of a model, as the registry holds them now.
interface IModelRegistry {
    /// @notice Price, latest version and active flag of `modelId`, read from one storage slot.
    /// @dev Reverts for an unknown model.
    function callTerms(uint256 modelId) external view returns (uint256 pricePerCall, uint32 latestVersion, bool active);

    /// @notice The terms receipts of `modelId` settle under now. A channel whose last settlement
    /// came before `floorEndsAt` may pay `floorPrice` per call once more.
    /// @dev Does not revert for an unknown model, so that a batch can skip it.
    /// @return exists Whether `modelId` exists.
    /// @return pricePerCall Its price per call.
    /// @return floorPrice The lowest receipt price it ever had, never above the price.
    /// @return floorEndsAt When its last price rise's notice ends or ended (0 if it never rose).
    /// @return payees Its payees in force now.
    /// @return shares Their shares, in basis points.
    function receiptTerms(uint256 modelId)
        external
        view
        returns (bool, uint256, uint256, uint64, address[] memory, uint16[] memory);

    /// @notice The accounts sharing a model's revenue and their shares in basis points.
    /// @dev Reverts for an unknown model. The first payee takes any rounding remainder.
    function getPayees(uint256 modelId) external view returns (address[] memory accounts, uint16[] memory shares);
}
