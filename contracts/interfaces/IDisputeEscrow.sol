// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IInferenceEscrow} from "./IInferenceEscrow.sol";
import {IRelayerCourt} from "./IRelayerCourt.sol";

/// @title What the dispute court reads from the escrow
/// @notice The proof that a call settled (an on-chain request's settlement record, a receipt
/// channel's settled totals), the escrow's EIP-712 digests and signature rules, and its wiring.
interface IDisputeEscrow {
    /// @notice The fee token.
    function token() external view returns (IERC20);

    /// @notice The relayer registry (typed as what the court asks of it).
    function relayers() external view returns (IRelayerCourt);

    /// @notice The account earning the protocol fee.
    function treasury() external view returns (address);

    /// @notice A request's status and, once settled, its 240-bit settlement record.
    function settlementRecord(uint256 requestId) external view returns (uint8 status, uint256 record);

    /// @notice What the channel (caller, relayer, model) has settled, and when it last did.
    function channelState(address caller, address relayer, uint256 modelId)
        external
        view
        returns (uint256 calls, uint256 amount, uint64 settledAt);

    /// @notice The EIP-712 digest a relayer signs for `att`.
    function hashAttestation(IInferenceEscrow.Attestation calldata att) external view returns (bytes32);

    /// @notice The EIP-712 digest a caller signs for `receipt`.
    function hashReceipt(IInferenceEscrow.Receipt calldata receipt) external view returns (bytes32);

    /// @notice Whether `signature` signs `receipt` by its caller's key or receipt signer in force.
    function isReceiptSigned(IInferenceEscrow.Receipt calldata receipt, bytes calldata signature)
        external
        view
        returns (bool);
}
