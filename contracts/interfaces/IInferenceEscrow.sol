// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title The errors, events and signed messages of InferenceEscrow
/// @notice Declared once for every part of the escrow (contracts/escrow) and for whoever reads
/// its logs or builds the messages it checks.
interface IInferenceEscrow {
    // ------------------------------------------------------------------ errors

    error InferenceEscrow_ZeroAmount();
    error InferenceEscrow_ZeroAddress();
    error InferenceEscrow_InsufficientCredit(address account, uint256 credit, uint256 required);
    error InferenceEscrow_NothingToWithdraw(address account);
    error InferenceEscrow_ModelInactive(uint256 modelId);
    error InferenceEscrow_UnknownVersion(uint256 modelId, uint32 version, uint32 latestVersion);
    error InferenceEscrow_PriceAboveMax(uint256 modelId, uint256 price, uint256 maxPrice);
    error InferenceEscrow_UnknownRequest(uint256 requestId);
    error InferenceEscrow_NotPending(uint256 requestId, uint8 status);
    error InferenceEscrow_DeadlinePassed(uint256 requestId, uint64 deadline);
    error InferenceEscrow_DeadlineNotPassed(uint256 requestId, uint64 deadline);
    error InferenceEscrow_AttestationMismatch(uint256 requestId);
    error InferenceEscrow_InvalidSignature(uint256 requestId);
    error InferenceEscrow_NotActiveRelayer(address account);
    error InferenceEscrow_NotDesignatedRelayer(uint256 requestId, address account);
    error InferenceEscrow_InvalidRejectReason(uint8 reason);
    error InferenceEscrow_LengthMismatch(uint256 attestations, uint256 signatures);
    error InferenceEscrow_FeeTooHigh(uint256 bps, uint256 maxBps);
    error InferenceEscrow_CreditOverflow(address account, uint256 credit, uint256 maxCredit);
    error InferenceEscrow_NothingToRelease(address caller, address relayer);
    error InferenceEscrow_ReleaseNotReady(address caller, address relayer, uint64 readyAt);

    // ------------------------------------------------------------------ events

    event Deposited(address indexed account, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);
    event InferenceRequested(
        uint256 indexed requestId,
        uint256 indexed modelId,
        uint32 version,
        address indexed caller,
        uint256 price,
        bytes32 inputHash,
        bytes input
    );
    /// @notice Only `relayer` may serve or reject request `requestId` (`requestInferenceVia`).
    event RelayerDesignated(uint256 indexed requestId, address indexed relayer);
    event InferenceFulfilled(uint256 indexed requestId, address indexed relayer, bytes32 outputHash);
    event InferenceRejected(uint256 indexed requestId, address indexed relayer, uint8 reason);
    event InferenceRefunded(uint256 indexed requestId);
    /// @notice An item of `fulfillBatch` that could not settle; `reason` is a `SkipReason`.
    event InferenceSkipped(uint256 indexed requestId, uint8 reason);
    event EarningsWithdrawn(address indexed account, uint256 amount);
    /// @notice A fee change was made; it applies with the `FeesEffectiveAt` emitted beside it.
    event ProtocolFeeChanged(uint16 oldBps, uint16 newBps);
    /// @notice A fee change was made; it applies with the `FeesEffectiveAt` emitted beside it.
    event RelayerFeeChanged(uint16 oldBps, uint16 newBps);
    /// @notice From `effectiveAt` on, settlements split fees with these shares.
    event FeesEffectiveAt(uint16 protocolFeeBps, uint16 relayerFeeBps, uint64 effectiveAt);
    event TreasuryChanged(address indexed oldTreasury, address indexed newTreasury);
    /// @notice `caller` moved `amount` of free credit into its reservation for `relayer`, now `reserved`.
    event Reserved(address indexed caller, address indexed relayer, uint256 amount, uint256 reserved);
    /// @notice `caller` may move up to `amount` of its reservation for `relayer` back to free
    /// credit from `readyAt` on (0, 0: cancelled).
    event ReleaseAnnounced(address indexed caller, address indexed relayer, uint256 amount, uint64 readyAt);
    /// @notice `amount` of `caller`'s reservation for `relayer` went back to its free credit.
    event Released(address indexed caller, address indexed relayer, uint256 amount);
    /// @notice From `effectiveAt` on, receipts of `account` may also be signed by `signer` (0: none).
    event ReceiptSignerChanged(address indexed account, address indexed signer, uint64 effectiveAt);
    /// @notice A channel settled up to its receipt's cumulative `calls` and `amount`; `paid` is the increase.
    event ReceiptSettled(
        address indexed caller, address indexed relayer, uint256 indexed modelId, uint256 calls, uint256 amount, uint256 paid
    );
    /// @notice An item of `settleReceipts` that did not settle; `reason` is a `ReceiptSkipReason`.
    event ReceiptSkipped(
        address indexed caller, address indexed relayer, uint256 indexed modelId, uint256 calls, uint8 reason
    );

    // ------------------------------------------------------------------ types

    /// @notice What a relayer signs: it ran `version` of `modelId` on the input hashing to
    /// `inputHash` for request `requestId`, and delivered output hashing to `outputHash`.
    struct Attestation {
        uint256 requestId;
        uint256 modelId;
        uint32 version;
        bytes32 inputHash;
        bytes32 outputHash;
    }

    /// @notice Why an item of `fulfillBatch` was skipped (the single `fulfill` reverts instead).
    enum SkipReason {
        None,
        NotPending, // unknown, or already fulfilled, rejected or refunded
        DeadlinePassed,
        Mismatch, // model, version or input hash differ from the request
        InvalidSignature,
        NotActiveRelayer, // the signer is not (or no longer) a bonded, active relayer
        NotDesignated // the request names another relayer
    }

    /// @notice What a caller signs to pay a relayer for off-chain calls to a model. `calls` and
    /// `amount` are totals over the channel (caller, relayer, modelId) since it opened; each new
    /// receipt adds one call and at least the model's receipt price. Not settleable after `deadline`.
    struct Receipt {
        address caller;
        address relayer;
        uint256 modelId;
        uint256 calls;
        uint256 amount;
        uint64 deadline;
    }

    /// @notice Why an item of `settleReceipts` was skipped.
    enum ReceiptSkipReason {
        None,
        NotNewer, // no more calls than the channel has settled, a smaller amount, or out of range
        Expired, // block.timestamp > deadline
        InvalidSignature, // signed neither by the caller's key nor by its receipt signer in force
        NotActiveRelayer, // the relayer is not (or no longer) bonded and active
        UnknownModel,
        Underpriced, // the increase pays less than the lowest receipt price it may pay per call
        InsufficientCredit, // the increase is more than the caller's reservation for the relayer
        NotSubmitter // the receipt names another relayer than the one submitting it
    }
}
