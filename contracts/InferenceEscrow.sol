// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IRelayerRegistry} from "./interfaces/IRelayerRegistry.sol";
import {EscrowBase} from "./escrow/EscrowBase.sol";
import {EscrowChannels} from "./escrow/EscrowChannels.sol";
import {EscrowCredit} from "./escrow/EscrowCredit.sol";
import {EscrowEarnings} from "./escrow/EscrowEarnings.sol";
import {EscrowModelStats} from "./escrow/EscrowModelStats.sol";
import {EscrowReceiptSigners} from "./escrow/EscrowReceiptSigners.sol";
import {EscrowReceipts} from "./escrow/EscrowReceipts.sol";
import {EscrowRequestRecords} from "./escrow/EscrowRequestRecords.sol";
import {EscrowRequests} from "./escrow/EscrowRequests.sol";
import {EscrowReservations} from "./escrow/EscrowReservations.sol";
import {EscrowTerms} from "./escrow/EscrowTerms.sol";

/// @title InferenceEscrow: prepaid credit, one escrowed fee per call, and its release
/// @notice Callers deposit fee tokens as credit. A call locks the model's current price from
/// that credit; a bonded relayer's signed attestation releases it to the treasury, the relayer
/// and the model's payees (see FeeSplit for the rounding rule); a rejection or a missed deadline
/// returns it to the caller's credit. Everyone is paid by pull (`withdrawEarnings`).
///
/// Off-chain calls: a caller moves credit into a reservation for one relayer (`reserve`) and
/// pays that relayer with EIP-712 `Receipt`s whose `calls` and `amount` add up over the channel
/// (caller, relayer, model). Only that relayer may settle them (`settleReceipts`), only out of
/// that reservation, which nothing else can spend and which comes back to free credit only
/// `withdrawalDelay` after `announceRelease`: from the chain alone a relayer knows what it can
/// serve without loss. Receipts are checked by ECDSA alone, against the caller's key or a signer
/// key it registered (`setReceiptSigner`; a change waits `withdrawalDelay`), so no contract's
/// answer can change between a relayer's check and settlement.
///
/// Terms change with notice: fee changes apply `termsNoticePeriod` after the owner makes them,
/// which is at least `requestTimeout` (every call paid before settles under the old fees) and
/// at least `withdrawalDelay` (relayers settle their receipts first).
/// @dev Composed of one part per job (contracts/escrow). The parts are listed from the most
/// basic to the most derived, which is also the order of their storage: keep it, so that every
/// slot stays where it is (after OpenZeppelin's EIP712, Ownable2Step and Pausable).
contract InferenceEscrow is
    EscrowTerms,
    EscrowCredit,
    EscrowEarnings,
    EscrowRequestRecords,
    EscrowChannels,
    EscrowReservations,
    EscrowReceiptSigners,
    EscrowModelStats,
    EscrowRequests,
    EscrowReceipts
{
    // ------------------------------------------------------------------ constructor

    /// @param token_ The fee token.
    /// @param registry_ The ModelRegistry.
    /// @param relayers_ The RelayerRegistry.
    /// @param treasury_ Receives the protocol fee.
    /// @param protocolFeeBps_ At most 1_000 (10%).
    /// @param relayerFeeBps_ At most 3_000 (30%).
    /// @param requestTimeout_ Seconds from a request to its deadline.
    /// @param withdrawalDelay_ Seconds a reservation waits to be released, and a signer change to apply.
    constructor(
        IERC20 token_,
        IModelRegistry registry_,
        IRelayerRegistry relayers_,
        address treasury_,
        uint16 protocolFeeBps_,
        uint16 relayerFeeBps_,
        uint64 requestTimeout_,
        uint64 withdrawalDelay_
    )
        EscrowBase(token_, registry_, relayers_)
        EscrowTerms(treasury_, protocolFeeBps_, relayerFeeBps_, requestTimeout_, withdrawalDelay_)
    {}
}
