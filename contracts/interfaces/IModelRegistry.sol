// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title What the escrow reads from the model registry
/// @notice The terms of a call and the payees of a model, as the registry holds them now.
interface IModelRegistry {
    /// @notice Price, latest version and active flag of `modelId`, read from one storage slot.
    /// @dev Reverts for an unknown model.
    function callTerms(uint256 modelId) external view returns (uint256 pricePerCall, uint32 latestVersion, bool active);

    /// @notice Whether `modelId` exists, its price per call, the lowest receipt price it ever had
    /// (`floorPrice`, never above the price) and when its last price rise's notice ends or ended
    /// (`floorEndsAt`, 0 if it never rose), and its payees in force now. A channel whose last
    /// settlement came before `floorEndsAt` may pay `floorPrice` per call once more.
    /// @dev Does not revert for an unknown model, so that a batch can skip it.
    function receiptTerms(uint256 modelId)
        external
        view
        returns (
            bool exists,
            uint256 pricePerCall,
            uint256 floorPrice,
            uint64 floorEndsAt,
            address[] memory payees,
            uint16[] memory shares
        );

    /// @notice The accounts sharing a model's revenue and their shares in basis points.
    /// @dev Reverts for an unknown model. The first payee takes any rounding remainder.
    function getPayees(uint256 modelId) external view returns (address[] memory accounts, uint16[] memory shares);
}
