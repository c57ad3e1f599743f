// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IInferenceEscrow} from "../interfaces/IInferenceEscrow.sol";
import {IModelRegistry} from "../interfaces/IModelRegistry.sol";
import {IRelayerRegistry} from "../interfaces/IRelayerRegistry.sol";

/// @title EscrowBase: what every part of InferenceEscrow shares
/// @notice The fee token, the two registries the escrow reads, the EIP-712 domain attestations
/// and receipts are signed in ("ModelHub", "1"), and the reentrancy guard of token movements.
abstract contract EscrowBase is IInferenceEscrow, EIP712, ReentrancyGuardTransient {
    // ------------------------------------------------------------------ storage

    /// @notice The fee token.
    IERC20 public immutable token;
    /// @notice The model registry prices and payees are read from.
    IModelRegistry public immutable registry;
    /// @notice The relayer registry that says who may attest.
    IRelayerRegistry public immutable relayers;

    // ------------------------------------------------------------------ constructor

    /// @param token_ The fee token.
    /// @param registry_ The ModelRegistry.
    /// @param relayers_ The RelayerRegistry.
    constructor(IERC20 token_, IModelRegistry registry_, IRelayerRegistry relayers_) EIP712("ModelHub", "1") {
        token = token_;
        registry = registry_;
        relayers = relayers_;
    }
}
