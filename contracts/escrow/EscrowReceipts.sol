// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EscrowChannels} from "./EscrowChannels.sol";
import {EscrowCredit} from "./EscrowCredit.sol";
import {EscrowEarnings} from "./EscrowEarnings.sol";
import {EscrowModelStats} from "./EscrowModelStats.sol";
import {EscrowReceiptSigners} from "./EscrowReceiptSigners.sol";
import {EscrowReservations} from "./EscrowReservations.sol";

/// @title EscrowReceipts: off-chain calls, settled in batches by the relayer that served them
/// @notice A caller pays a relayer with EIP-712 `Receipt`s whose `calls` and `amount` add up over
/// the channel (caller, relayer, model). Only that relayer may settle them, only out of the
/// caller's reservation for it; each pays its channel's increase since the last settled receipt,
/// at least the lowest receipt price it may pay per call, split like any fee.
/// @dev Bases in InferenceEscrow's storage order (EscrowCredit too, which fixes where it goes).
abstract contract EscrowReceipts is
    EscrowCredit,
    EscrowEarnings,
    EscrowChannels,
    EscrowReservations,
    EscrowReceiptSigners,
    EscrowModelStats
{
    // ------------------------------------------------------------------ storage

    /// @notice The EIP-712 type hash of `Receipt`.
    bytes32 public constant RECEIPT_TYPEHASH = keccak256(
        "Receipt(address caller,address relayer,uint256 modelId,uint256 calls,uint256 amount,uint64 deadline)"
    );
    /// @notice A channel counts at most this many calls.
    uint256 public constant MAX_CHANNEL_CALLS = type(uint64).max;
    /// @notice Every call paid by receipt pays at least this much, a free model's too, so that
    /// a call counted in `modelStats` is a call somebody paid for.
    uint256 public constant MIN_RECEIPT_PRICE = 1;

    // ------------------------------------------------------------------ external

    /// @notice The submitting relayer settles receipts it holds: each pays its channel's increase
    /// since the last settled receipt out of the caller's reservation for that relayer, split
    /// like any fee. An item that cannot settle is skipped with `ReceiptSkipped`; no item can
    /// make the others fail (no external call depends on the caller).
    /// @param receipts Receipts naming the sender as relayer; at most one per channel is useful.
    /// @param signatures Each receipt's EIP-712 signature by its caller or the caller's receipt signer.
    function settleReceipts(Receipt[] calldata receipts, bytes[] calldata signatures) external nonReentrant {
        uint256 count = receipts.length;
        if (signatures.length != count) revert InferenceEscrow_LengthMismatch(count, signatures.length);
        Settlement memory run = _startSettlement();
        bool active = relayers.isActive(msg.sender);
        for (uint256 i; i < count; ++i) {
            Receipt calldata receipt = receipts[i];
            ReceiptSkipReason reason = receipt.relayer != msg.sender
                ? ReceiptSkipReason.NotSubmitter
                : (active ? _settleReceipt(run, receipt, signatures[i]) : ReceiptSkipReason.NotActiveRelayer);
            if (reason != ReceiptSkipReason.None) {
                emit ReceiptSkipped(receipt.caller, receipt.relayer, receipt.modelId, receipt.calls, uint8(reason));
            }
        }
        _finishSettlement(run);
    }

    /// @notice The least a receipt on the channel (caller, relayer, model) must pay per new call
    /// if settled now (at least 1); it never rises until the channel settles.
    /// @param caller The channel's caller.
    /// @param relayer The channel's relayer.
    /// @param modelId The channel's model.
    /// @return The price per new call (0 for an unknown model).
    function channelPrice(address caller, address relayer, uint256 modelId) external view returns (uint256) {
        // The payees are not needed here.
        // slither-disable-next-line unused-return
        (bool exists, uint256 pricePerCall, uint256 floorPrice, uint64 floorEndsAt,,) = registry.receiptTerms(modelId);
        if (!exists) return 0;
        uint256 since = _channels[_channelKey(caller, relayer, modelId)].settledAt;
        if (since == 0) since = _reservations[caller][relayer].openedAt;
        return _lowestPrice(since, pricePerCall, floorPrice, floorEndsAt);
    }

    /// @notice The EIP-712 digest a caller signs for `receipt` (domain "ModelHub", version "1").
    /// @param receipt The receipt.
    /// @return The digest.
    function hashReceipt(Receipt calldata receipt) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    RECEIPT_TYPEHASH,
                    receipt.caller,
                    receipt.relayer,
                    receipt.modelId,
                    receipt.calls,
                    receipt.amount,
                    receipt.deadline
                )
            )
        );
    }

    /// @notice Whether `signature` signs `receipt` by its caller's key or the caller's receipt
    /// signer in force now (what settlement accepts).
    /// @param receipt The receipt.
    /// @param signature Its 65-byte signature.
    /// @return Whether settlement would take the signature.
    function isReceiptSigned(Receipt calldata receipt, bytes calldata signature) external view returns (bool) {
        return _signedBy(receipt.caller, hashReceipt(receipt), signature);
    }

    // ------------------------------------------------------------------ internal

    /// @dev Checks one receipt naming the submitting (active) relayer and, if it holds, pays its
    /// channel's increase out of the caller's reservation for that relayer. Returns why it did
    /// not settle (ReceiptSkipReason.None when it did).
    function _settleReceipt(Settlement memory run, Receipt calldata receipt, bytes calldata signature)
        private
        returns (ReceiptSkipReason)
    {
        if (block.timestamp > receipt.deadline) return ReceiptSkipReason.Expired;
        if (receipt.calls > MAX_CHANNEL_CALLS || receipt.amount > type(uint160).max) return ReceiptSkipReason.NotNewer;
        address caller = receipt.caller;
        uint256 modelId = receipt.modelId;
        Channel storage settled = _channels[_channelKey(caller, msg.sender, modelId)];
        Channel memory before = settled;
        if (receipt.calls <= before.calls || receipt.amount < before.amount) return ReceiptSkipReason.NotNewer;

        if (!_signedBy(caller, hashReceipt(receipt), signature)) return ReceiptSkipReason.InvalidSignature;
        if (modelId != run.modelId || run.payees.length == 0) {
            // One registry call per model per batch: the receipt prices and the payees (which
            // _bookSplit then finds cached).
            bool exists;
            (exists, run.pricePerCall, run.floorPrice, run.floorEndsAt, run.payees, run.shares) =
                registry.receiptTerms(modelId);
            if (!exists) return ReceiptSkipReason.UnknownModel;
            run.modelId = modelId;
        }
        uint256 newCalls;
        uint256 paid;
        unchecked {
            // Both totals were checked to be at least the settled ones and within range.
            newCalls = receipt.calls - before.calls;
            paid = receipt.amount - before.amount;
        }
        Reservation storage reserved = _reservations[caller][msg.sender];
        uint256 since = before.settledAt == 0 ? reserved.openedAt : before.settledAt;
        uint256 perCall = _lowestPrice(since, run.pricePerCall, run.floorPrice, run.floorEndsAt);
        // newCalls < 2**64 and perCall < 2**128: the product fits.
        if (paid < newCalls * perCall) return ReceiptSkipReason.Underpriced;
        uint256 available = reserved.amount;
        if (paid > available) return ReceiptSkipReason.InsufficientCredit;

        // Effects: the channel and the reservation first, then the money is booked.
        // uint32 seconds last until the year 2106.
        settled.calls = uint64(receipt.calls);
        settled.amount = uint160(receipt.amount);
        settled.settledAt = uint32(block.timestamp);
        unchecked {
            reserved.amount = uint160(available - paid);
        }
        ModelStats storage stats = _stats[modelId];
        stats.calls += newCalls;
        stats.revenue += paid;

        _bookSplit(run, msg.sender, modelId, paid);
        emit ReceiptSettled(caller, msg.sender, modelId, receipt.calls, receipt.amount, paid);
        return ReceiptSkipReason.None;
    }

    /// @dev The least a channel pays per new call when the increase since `since` (its last
    /// settlement, or for its first one the opening of the caller's reservation for the relayer:
    /// no receipt it pays was signed earlier) settles now: the lowest receipt price the model
    /// ever had if its last rise's notice ended after `since` (receipts signed during it paid
    /// less than the price), else the price; never less than MIN_RECEIPT_PRICE. Over time it can
    /// only fall for a given channel, so a receipt accepted at the price it showed always settles.
    function _lowestPrice(uint256 since, uint256 pricePerCall, uint256 floorPrice, uint64 floorEndsAt)
        private
        pure
        returns (uint256 perCall)
    {
        perCall = since < floorEndsAt ? floorPrice : pricePerCall;
        if (perCall < MIN_RECEIPT_PRICE) perCall = MIN_RECEIPT_PRICE;
    }
}
