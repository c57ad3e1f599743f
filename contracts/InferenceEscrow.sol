// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IRelayerRegistry} from "./interfaces/IRelayerRegistry.sol";
import {ExactTransfer} from "./libraries/ExactTransfer.sol";
import {FeeSplit} from "./libraries/FeeSplit.sol";

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
contract InferenceEscrow is EIP712, Ownable2Step, Pausable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using ExactTransfer for IERC20;

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

    // ------------------------------------------------------------------ types and constants

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

    uint8 public constant STATUS_PENDING = 1;
    uint8 public constant STATUS_FULFILLED = 2;
    uint8 public constant STATUS_REJECTED = 3;
    uint8 public constant STATUS_REFUNDED = 4;

    uint8 public constant REJECT_BAD_INPUT = 1;
    uint8 public constant REJECT_MODEL_ERROR = 2;
    uint8 public constant REJECT_ARTIFACT_UNAVAILABLE = 3;
    uint8 public constant REJECT_OTHER = 4;

    uint16 public constant MAX_PROTOCOL_FEE_BPS = 1_000;
    uint16 public constant MAX_RELAYER_FEE_BPS = 3_000;

    bytes32 public constant ATTESTATION_TYPEHASH = keccak256(
        "Attestation(uint256 requestId,uint256 modelId,uint32 version,bytes32 inputHash,bytes32 outputHash)"
    );
    bytes32 public constant RECEIPT_TYPEHASH = keccak256(
        "Receipt(address caller,address relayer,uint256 modelId,uint256 calls,uint256 amount,uint64 deadline)"
    );
    /// @notice A channel counts at most this many calls.
    uint256 public constant MAX_CHANNEL_CALLS = type(uint64).max;
    /// @notice Every call paid by receipt pays at least this much, a free model's too, so that
    /// a call counted in `modelStats` is a call somebody paid for.
    uint256 public constant MIN_RECEIPT_PRICE = 1;

    // ------------------------------------------------------------------ storage

    /// @dev One call. Slot 0 and the input hash are all that settlement reads; the caller is the
    /// high 160 bits of the request id. `relayer` is written only for designated requests. When a
    /// request ends, slot 0 keeps only the status and the rest is cleared, for the storage refund.
    struct Request {
        uint128 price;
        uint48 modelId;
        uint32 version;
        uint32 deadline; // uint32 seconds last until the year 2106
        uint8 status;
        bool designated;
        bytes32 inputHash;
        address relayer;
    }

    /// @dev Full words: a receipt may add up to 2**64 - 1 calls and 2**160 - 1 tokens at once, so
    /// packed counters could be pushed to overflow, and a checked overflow would block every
    /// later settlement of the model.
    struct ModelStats {
        uint256 calls;
        uint256 revenue;
    }

    /// @dev A caller's free credit and the number of requests it has made, in one slot: a request
    /// debits the credit and takes the next number with a single storage write.
    struct CallerAccount {
        uint160 credit;
        uint96 requests;
    }

    /// @dev What has been settled of a channel (caller, relayer, model): its latest settled
    /// receipt's totals, and when that was.
    struct Channel {
        uint64 calls;
        uint160 amount;
        uint32 settledAt;
    }

    /// @dev Credit a caller set aside for one relayer's receipts, and a release it announced.
    /// Settlement reads only the first slot.
    struct Reservation {
        uint160 amount;
        uint40 releaseAt; // 0: no release announced
        uint40 openedAt; // the first reserve: no receipt paid from it was signed before
        uint160 releasing;
    }

    /// @dev A key that signs receipts for an account, and a change of it waiting for its time.
    struct ReceiptSigner {
        address current;
        uint40 nextAt; // 0: no change pending
        address next;
    }

    /// @dev The fees in force, and a change waiting for `nextAt`; one slot.
    struct FeeConfig {
        address treasury;
        uint16 protocolFeeBps;
        uint16 relayerFeeBps;
        uint16 nextProtocolFeeBps;
        uint16 nextRelayerFeeBps;
        uint32 nextAt; // 0: no change pending; uint32 seconds last until the year 2106
    }

    /// @notice The fee token.
    IERC20 public immutable token;
    /// @notice The model registry prices and payees are read from.
    IModelRegistry public immutable registry;
    /// @notice The relayer registry that says who may attest.
    IRelayerRegistry public immutable relayers;
    /// @notice Seconds a relayer has to serve a call before the caller can take a refund.
    uint64 public immutable requestTimeout;
    /// @notice Seconds between `announceRelease` and `release` of a reservation, and before a
    /// change of receipt signer applies.
    uint64 public immutable withdrawalDelay;
    /// @notice Seconds between a fee change and the settlements it applies to:
    /// max(`requestTimeout`, `withdrawalDelay`).
    uint64 public immutable termsNoticePeriod;

    FeeConfig private _fees;

    mapping(address account => CallerAccount) private _accounts;
    /// @notice Released revenue waiting for `withdrawEarnings` (payees, relayers, treasury).
    mapping(address account => uint256) public earningsOf;

    // All written through storage pointers, which Slither does not follow.
    // slither-disable-next-line uninitialized-state
    mapping(uint256 requestId => Request) private _requests;
    // slither-disable-next-line uninitialized-state
    mapping(bytes32 channelKey => Channel) private _channels;
    // slither-disable-next-line uninitialized-state
    mapping(address caller => mapping(address relayer => Reservation)) private _reservations;
    // slither-disable-next-line uninitialized-state
    mapping(address account => ReceiptSigner) private _signers;
    // slither-disable-next-line uninitialized-state
    mapping(uint256 modelId => ModelStats) private _stats;

    /// @dev What a settlement run keeps in memory, so that a batch reads each setting once,
    /// asks the relayer registry once per signer, the model registry once per model, and
    /// books the treasury's and each relayer's earnings with one storage write.
    struct Settlement {
        FeeConfig fees;
        uint256 treasuryEarned;
        address relayer;
        uint256 relayerEarned;
        address activeRelayer;
        uint256 modelId;
        address[] payees;
        uint16[] shares;
        uint256 pricePerCall; // of `modelId`, when its terms were read for receipts
        uint256 floorPrice;
        uint64 floorEndsAt;
    }

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
    ) EIP712("ModelHub", "1") Ownable(msg.sender) {
        token = token_;
        registry = registry_;
        relayers = relayers_;
        requestTimeout = requestTimeout_;
        withdrawalDelay = withdrawalDelay_;
        termsNoticePeriod = requestTimeout_ > withdrawalDelay_ ? requestTimeout_ : withdrawalDelay_;
        setTreasury(treasury_);
        _checkFees(protocolFeeBps_, relayerFeeBps_);
        _fees.protocolFeeBps = protocolFeeBps_;
        _fees.relayerFeeBps = relayerFeeBps_;
        emit ProtocolFeeChanged(0, protocolFeeBps_);
        emit RelayerFeeChanged(0, relayerFeeBps_);
        emit FeesEffectiveAt(protocolFeeBps_, relayerFeeBps_, uint64(block.timestamp));
    }

    // ------------------------------------------------------------------ external: credit

    /// @notice Adds `amount` tokens to the caller's credit.
    function deposit(uint256 amount) external {
        depositFor(msg.sender, amount);
    }

    /// @notice Adds `amount` tokens, paid by the caller, to `account`'s credit.
    function depositFor(address account, uint256 amount) public nonReentrant {
        if (amount == 0) revert InferenceEscrow_ZeroAmount();
        if (account == address(0)) revert InferenceEscrow_ZeroAddress();
        _addCredit(account, amount);
        emit Deposited(account, amount);
        token.pullExact(msg.sender, amount);
    }

    /// @notice Sends `amount` of the caller's free credit back to it. Free credit backs no
    /// receipt (reservations do), so it leaves at once.
    function withdraw(uint256 amount) external nonReentrant {
        if (amount == 0) revert InferenceEscrow_ZeroAmount();
        CallerAccount storage account = _accounts[msg.sender];
        uint256 credit = account.credit;
        if (credit < amount) revert InferenceEscrow_InsufficientCredit(msg.sender, credit, amount);
        unchecked {
            account.credit = uint160(credit - amount);
        }
        emit Withdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ external: reservations

    /// @notice Sets `amount` of the caller's free credit aside for receipts paying `relayer`.
    /// Only `relayer` can settle receipts against it; it comes back only through `announceRelease`.
    function reserve(address relayer, uint256 amount) external {
        if (amount == 0) revert InferenceEscrow_ZeroAmount();
        if (relayer == address(0)) revert InferenceEscrow_ZeroAddress();
        CallerAccount storage account = _accounts[msg.sender];
        uint256 credit = account.credit;
        if (credit < amount) revert InferenceEscrow_InsufficientCredit(msg.sender, credit, amount);
        Reservation storage reservation = _reservations[msg.sender][relayer];
        uint256 reserved = reservation.amount + amount;
        if (reserved > type(uint160).max) {
            revert InferenceEscrow_CreditOverflow(msg.sender, reservation.amount, type(uint160).max);
        }
        unchecked {
            account.credit = uint160(credit - amount);
        }
        reservation.amount = uint160(reserved);
        // uint40 seconds last until the year 36812.
        if (reservation.openedAt == 0) reservation.openedAt = uint40(block.timestamp);
        emit Reserved(msg.sender, relayer, amount, reserved);
    }

    /// @notice Adds `amount` tokens, paid by the sender, to `account`'s reservation for `relayer`
    /// in one step (a deposit for `account` followed by its `reserve`).
    function reserveFor(address account, address relayer, uint256 amount) external nonReentrant {
        if (amount == 0) revert InferenceEscrow_ZeroAmount();
        if (account == address(0) || relayer == address(0)) revert InferenceEscrow_ZeroAddress();
        Reservation storage reservation = _reservations[account][relayer];
        uint256 reserved = reservation.amount + amount;
        if (reserved > type(uint160).max) {
            revert InferenceEscrow_CreditOverflow(account, reservation.amount, type(uint160).max);
        }
        reservation.amount = uint160(reserved);
        if (reservation.openedAt == 0) reservation.openedAt = uint40(block.timestamp);
        emit Deposited(account, amount);
        emit Reserved(account, relayer, amount, reserved);
        token.pullExact(msg.sender, amount);
    }

    /// @notice Announces that up to `amount` of the caller's reservation for `relayer` goes back
    /// to free credit `withdrawalDelay` from now (`release`); replaces any earlier announcement
    /// (0 cancels). The relayer settles what it holds meanwhile; until then it stays reserved.
    function announceRelease(address relayer, uint256 amount) external {
        if (amount > type(uint160).max) revert InferenceEscrow_CreditOverflow(msg.sender, amount, type(uint160).max);
        Reservation storage reservation = _reservations[msg.sender][relayer];
        uint64 readyAt = amount == 0 ? 0 : uint64(block.timestamp + withdrawalDelay);
        reservation.releasing = uint160(amount);
        // uint40 seconds last until the year 36812.
        reservation.releaseAt = uint40(readyAt);
        emit ReleaseAnnounced(msg.sender, relayer, amount, readyAt);
    }

    /// @notice Moves the announced part of the caller's reservation for `relayer` (at most what
    /// is left of it) back to free credit, once its `readyAt` has come.
    function release(address relayer) external {
        Reservation storage reservation = _reservations[msg.sender][relayer];
        uint64 readyAt = reservation.releaseAt;
        if (readyAt == 0) revert InferenceEscrow_NothingToRelease(msg.sender, relayer);
        if (block.timestamp < readyAt) revert InferenceEscrow_ReleaseNotReady(msg.sender, relayer, readyAt);
        uint256 reserved = reservation.amount;
        uint256 amount = reservation.releasing < reserved ? reservation.releasing : reserved;
        unchecked {
            reservation.amount = uint160(reserved - amount);
        }
        reservation.releasing = 0;
        reservation.releaseAt = 0;
        _addCredit(msg.sender, amount);
        emit Released(msg.sender, relayer, amount);
    }

    /// @notice Lets `signer` sign receipts for the caller besides the caller's own key (a contract
    /// wallet needs one: receipts are checked by ECDSA alone). The first signer applies at once;
    /// replacing or removing (0) one applies `withdrawalDelay` from now, so that relayers can
    /// settle receipts the old key signed.
    function setReceiptSigner(address signer) external {
        ReceiptSigner storage key = _signers[msg.sender];
        address inForce = _signerInForce(key);
        uint64 effectiveAt = uint64(block.timestamp);
        if (inForce == address(0)) {
            key.current = signer;
            key.next = address(0);
            key.nextAt = 0;
        } else {
            effectiveAt += withdrawalDelay;
            key.current = inForce;
            key.next = signer;
            // uint40 seconds last until the year 36812.
            key.nextAt = uint40(effectiveAt);
        }
        emit ReceiptSignerChanged(msg.sender, signer, effectiveAt);
    }

    // ------------------------------------------------------------------ external: calls

    /// @notice Pays for one call any active relayer may serve: locks the model's current price
    /// from the caller's credit. Nobody may reject it; unserved, it is refunded after its deadline.
    /// @param modelId The model to run.
    /// @param version The version to run; 0 means the latest, resolved now (pass the version
    /// you checked to be sure the owner did not publish another one first).
    /// @param input The input JSON, UTF-8; relayers read it from the event.
    /// @param maxPrice The most the caller accepts to pay; protects against a price change.
    /// @return requestId The id relayers and the caller refer to the call by: the caller's
    /// address in the high 160 bits and its request number (1, 2, ...) in the low 96, so a
    /// caller knows the id of its next request in advance (`nextRequestId`).
    function requestInference(uint256 modelId, uint32 version, bytes calldata input, uint256 maxPrice)
        external
        whenNotPaused
        returns (uint256 requestId)
    {
        return _request(modelId, version, input, maxPrice, address(0));
    }

    /// @notice Pays for one call that only `relayer` (active now) may serve; it may also reject
    /// it, which refunds the caller at once.
    function requestInferenceVia(uint256 modelId, uint32 version, bytes calldata input, uint256 maxPrice, address relayer)
        external
        whenNotPaused
        returns (uint256 requestId)
    {
        if (!relayers.isActive(relayer)) revert InferenceEscrow_NotActiveRelayer(relayer);
        requestId = _request(modelId, version, input, maxPrice, relayer);
        emit RelayerDesignated(requestId, relayer);
    }

    /// @notice Settles one call with a relayer's signed attestation; anyone may submit it.
    /// @param att The attestation; must match the request's model, version and input hash.
    /// @param signature An active relayer's EIP-712 signature of `att` (65 bytes).
    function fulfill(Attestation calldata att, bytes calldata signature) external {
        Settlement memory run = _startSettlement();
        (SkipReason reason, address signer) = _settle(run, att, signature);
        if (reason != SkipReason.None) _revertFor(reason, att, signer);
        _finishSettlement(run);
    }

    /// @notice Settles many calls; an item that cannot settle is skipped with `InferenceSkipped`.
    function fulfillBatch(Attestation[] calldata atts, bytes[] calldata signatures) external {
        uint256 count = atts.length;
        if (signatures.length != count) revert InferenceEscrow_LengthMismatch(count, signatures.length);
        Settlement memory run = _startSettlement();
        for (uint256 i; i < count; ++i) {
            (SkipReason reason,) = _settle(run, atts[i], signatures[i]);
            if (reason != SkipReason.None) emit InferenceSkipped(atts[i].requestId, uint8(reason));
        }
        _finishSettlement(run);
    }

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

    /// @notice The relayer a call was designated to declares it unservable; the caller gets the
    /// full price back. Calls open to every relayer cannot be rejected (they are refunded after
    /// their deadline), so that no relayer can refund a call another one has answered.
    /// @param reason 1 input does not fit the model, 2 model error, 3 model file unavailable or
    /// not matching its digest, 4 other.
    function reject(uint256 requestId, uint8 reason) external {
        if (reason < REJECT_BAD_INPUT || reason > REJECT_OTHER) revert InferenceEscrow_InvalidRejectReason(reason);
        Request storage request = _requests[requestId];
        if (!request.designated || request.relayer != msg.sender) {
            if (request.status == 0) revert InferenceEscrow_UnknownRequest(requestId);
            if (request.status == STATUS_PENDING) revert InferenceEscrow_NotDesignatedRelayer(requestId, msg.sender);
        }
        _returnToCaller(requestId, STATUS_REJECTED);
        emit InferenceRejected(requestId, msg.sender, reason);
    }

    /// @notice Returns the price of a call nobody served in time to its caller's credit.
    function refund(uint256 requestId) external {
        uint64 deadline = _requests[requestId].deadline;
        if (block.timestamp <= deadline) revert InferenceEscrow_DeadlineNotPassed(requestId, deadline);
        _returnToCaller(requestId, STATUS_REFUNDED);
        emit InferenceRefunded(requestId);
    }

    /// @notice Pays out all of the caller's released earnings.
    function withdrawEarnings() external nonReentrant {
        uint256 amount = earningsOf[msg.sender];
        if (amount == 0) revert InferenceEscrow_NothingToWithdraw(msg.sender);
        earningsOf[msg.sender] = 0;
        emit EarningsWithdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ external: owner

    /// @notice Sets the treasury's share of each fee, at most 1_000 bps; applies to settlements
    /// from `termsNoticePeriod` on (replacing a change still pending).
    function setProtocolFeeBps(uint16 bps) external onlyOwner {
        (uint16 protocolBps, uint16 relayerBps) = _scheduledFees();
        _checkFees(bps, relayerBps);
        emit ProtocolFeeChanged(protocolBps, bps);
        _scheduleFees(bps, relayerBps);
    }

    /// @notice Sets the serving relayer's share of each fee, at most 3_000 bps; applies to
    /// settlements from `termsNoticePeriod` on (replacing a change still pending).
    function setRelayerFeeBps(uint16 bps) external onlyOwner {
        (uint16 protocolBps, uint16 relayerBps) = _scheduledFees();
        _checkFees(protocolBps, bps);
        emit RelayerFeeChanged(relayerBps, bps);
        _scheduleFees(protocolBps, bps);
    }

    /// @notice Sets the account that earns the protocol fee from now on; past earnings stay where they are.
    function setTreasury(address newTreasury) public onlyOwner {
        if (newTreasury == address(0)) revert InferenceEscrow_ZeroAddress();
        emit TreasuryChanged(_fees.treasury, newTreasury);
        _fees.treasury = newTreasury;
    }

    /// @notice Stops new requests. Deposits, withdrawals, settlement, rejections and refunds go on.
    function pause() external onlyOwner {
        _pause();
    }

    /// @notice Lets new requests in again.
    function unpause() external onlyOwner {
        _unpause();
    }

    // ------------------------------------------------------------------ external: views

    /// @notice One request. After it ends only `status` (and the caller, which is part of the
    /// id) is kept; the rest reads as zero.
    /// @dev status: 1 pending, 2 fulfilled, 3 rejected, 4 refunded; unknown ids revert.
    function getRequest(uint256 requestId)
        external
        view
        returns (
            address caller,
            uint256 modelId,
            uint32 version,
            uint256 price,
            bytes32 inputHash,
            uint64 deadline,
            uint8 status
        )
    {
        Request storage r = _requests[requestId];
        if (r.status == 0) revert InferenceEscrow_UnknownRequest(requestId);
        return (_callerOf(requestId), r.modelId, r.version, r.price, r.inputHash, r.deadline, r.status);
    }

    /// @notice The relayer a pending request was designated to (address(0): any active relayer).
    function designatedRelayer(uint256 requestId) external view returns (address) {
        return _requests[requestId].relayer;
    }

    /// @notice Free prepaid credit of `account`.
    function balanceOf(address account) external view returns (uint256) {
        return _accounts[account].credit;
    }

    /// @notice The id `caller`'s next request will have.
    function nextRequestId(address caller) external view returns (uint256) {
        return _requestId(caller, _accounts[caller].requests + 1);
    }

    /// @notice Settled calls of a model and the total price they paid.
    function modelStats(uint256 modelId) external view returns (uint256 calls, uint256 revenue) {
        ModelStats storage stats = _stats[modelId];
        return (stats.calls, stats.revenue);
    }

    /// @notice The account earning the protocol fee.
    function treasury() external view returns (address) {
        return _fees.treasury;
    }

    /// @notice The treasury's share of each fee in force now, in bps.
    function protocolFeeBps() external view returns (uint16) {
        return _feesInForce().protocolFeeBps;
    }

    /// @notice The serving relayer's share of each fee in force now, in bps.
    function relayerFeeBps() external view returns (uint16) {
        return _feesInForce().relayerFeeBps;
    }

    /// @notice A fee change waiting for `effectiveAt` (0, 0, 0 when none is pending).
    function pendingFees() external view returns (uint16 protocolBps, uint16 relayerBps, uint64 effectiveAt) {
        FeeConfig memory fees = _fees;
        if (fees.nextAt == 0 || block.timestamp >= fees.nextAt) return (0, 0, 0);
        return (fees.nextProtocolFeeBps, fees.nextRelayerFeeBps, fees.nextAt);
    }

    /// @notice What `caller` set aside for `relayer`'s receipts, and the release it announced.
    function reservation(address caller, address relayer)
        external
        view
        returns (uint256 reserved, uint256 releasing, uint64 releaseAt)
    {
        Reservation storage r = _reservations[caller][relayer];
        return (r.amount, r.releasing, r.releaseAt);
    }

    /// @notice The key that signs receipts for `account` besides its own (0: none), and a change
    /// of it that applies at `nextAt` (0, 0 when none is pending).
    function receiptSigner(address account) external view returns (address signer, address nextSigner, uint64 nextAt) {
        ReceiptSigner storage key = _signers[account];
        signer = _signerInForce(key);
        if (key.nextAt != 0 && block.timestamp < key.nextAt) return (signer, key.next, key.nextAt);
    }

    /// @notice What has been settled of the channel (caller, relayer, model): the totals of its
    /// newest settled receipt.
    function channel(address caller, address relayer, uint256 modelId)
        external
        view
        returns (uint256 calls, uint256 amount)
    {
        Channel storage settled = _channels[_channelKey(caller, relayer, modelId)];
        return (settled.calls, settled.amount);
    }

    /// @notice The least a receipt on the channel (caller, relayer, model) must pay per new call
    /// if settled now (at least 1); it never rises until the channel settles.
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

    /// @notice The EIP-712 digest a relayer signs for `att` (domain "ModelHub", version "1").
    function hashAttestation(Attestation calldata att) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(ATTESTATION_TYPEHASH, att.requestId, att.modelId, att.version, att.inputHash, att.outputHash))
        );
    }

    // ------------------------------------------------------------------ internal: requests

    function _request(uint256 modelId, uint32 version, bytes calldata input, uint256 maxPrice, address relayer)
        private
        returns (uint256 requestId)
    {
        (uint256 price, uint32 latestVersion, bool active) = registry.callTerms(modelId);
        if (!active) revert InferenceEscrow_ModelInactive(modelId);
        if (version == 0) version = latestVersion;
        else if (version > latestVersion) revert InferenceEscrow_UnknownVersion(modelId, version, latestVersion);
        if (price > maxPrice) revert InferenceEscrow_PriceAboveMax(modelId, price, maxPrice);

        CallerAccount memory account = _accounts[msg.sender];
        if (account.credit < price) revert InferenceEscrow_InsufficientCredit(msg.sender, account.credit, price);
        unchecked {
            // price <= credit, and 2**96 requests cannot be paid for in gas.
            account.credit -= uint160(price);
            account.requests += 1;
        }
        _accounts[msg.sender] = account;
        requestId = _requestId(msg.sender, account.requests);

        bytes32 inputHash = keccak256(input);
        Request storage request = _requests[requestId];
        // The registry caps prices at 2**128 - 1 and numbers models from 1, so neither cast
        // truncates; uint32 seconds last until the year 2106.
        request.price = uint128(price);
        request.modelId = uint48(modelId);
        request.version = version;
        request.deadline = uint32(block.timestamp + requestTimeout);
        request.status = STATUS_PENDING;
        request.inputHash = inputHash;
        if (relayer != address(0)) {
            request.designated = true;
            request.relayer = relayer;
        }
        emit InferenceRequested(requestId, modelId, version, msg.sender, price, inputHash, input);
    }

    // ------------------------------------------------------------------ internal: settlement

    function _startSettlement() private view returns (Settlement memory run) {
        run.fees = _feesInForce();
    }

    /// @dev Checks one attestation and, if it holds, releases its request's price. Returns why
    /// it did not settle (SkipReason.None when it did) and the recovered signer.
    function _settle(Settlement memory run, Attestation calldata att, bytes calldata signature)
        private
        returns (SkipReason, address)
    {
        Request storage request = _requests[att.requestId];
        if (request.status != STATUS_PENDING) return (SkipReason.NotPending, address(0));
        if (block.timestamp > request.deadline) return (SkipReason.DeadlinePassed, address(0));
        uint256 modelId = request.modelId;
        if (att.modelId != modelId || att.version != request.version || att.inputHash != request.inputHash) {
            return (SkipReason.Mismatch, address(0));
        }
        // The third value only details the error, which is reported as InvalidSignature either way.
        // slither-disable-next-line unused-return
        (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecoverCalldata(hashAttestation(att), signature);
        if (error != ECDSA.RecoverError.NoError) return (SkipReason.InvalidSignature, address(0));
        if (request.designated && signer != request.relayer) return (SkipReason.NotDesignated, signer);
        if (signer != run.activeRelayer) {
            if (!relayers.isActive(signer)) return (SkipReason.NotActiveRelayer, signer);
            run.activeRelayer = signer;
        }

        // Effects: end the request before booking the money.
        uint256 price = _end(request, STATUS_FULFILLED);

        ModelStats storage stats = _stats[modelId];
        stats.calls += 1;
        stats.revenue += price;

        _book(run, signer, modelId, price);
        emit InferenceFulfilled(att.requestId, signer, att.outputHash);
        return (SkipReason.None, signer);
    }

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
            // _book then finds cached).
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

        _book(run, msg.sender, modelId, paid);
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

    /// @dev Splits `price` by FeeSplit: treasury and relayer parts accumulate in `run`, payee
    /// parts go straight to earnings (in a batch their slots are warm after the first item).
    function _book(Settlement memory run, address relayer, uint256 modelId, uint256 price) private {
        (uint256 protocolPart, uint256 relayerPart, uint256 payeePart) =
            FeeSplit.split(price, run.fees.protocolFeeBps, run.fees.relayerFeeBps);

        run.treasuryEarned += protocolPart;
        if (relayer != run.relayer) {
            _addEarnings(run.relayer, run.relayerEarned);
            run.relayer = relayer;
            run.relayerEarned = 0;
        }
        run.relayerEarned += relayerPart;

        if (modelId != run.modelId) {
            // Payees are those in force at settlement; a change applies only after a notice
            // (ModelRegistry.setPayees), so calls paid before it settle to the payees they were paid under.
            (run.payees, run.shares) = registry.getPayees(modelId);
            run.modelId = modelId;
        }
        address[] memory payees = run.payees;
        uint256 rest = payeePart;
        for (uint256 i = 1; i < payees.length; ++i) {
            uint256 part = FeeSplit.shareOf(payeePart, run.shares[i]);
            rest -= part;
            _addEarnings(payees[i], part);
        }
        _addEarnings(payees[0], rest);
    }

    function _finishSettlement(Settlement memory run) private {
        _addEarnings(run.relayer, run.relayerEarned);
        _addEarnings(run.fees.treasury, run.treasuryEarned);
    }

    function _addEarnings(address account, uint256 amount) private {
        if (amount != 0) earningsOf[account] += amount;
    }

    function _revertFor(SkipReason reason, Attestation calldata att, address signer) private view {
        uint256 requestId = att.requestId;
        if (reason == SkipReason.NotPending) {
            uint8 status = _requests[requestId].status;
            if (status == 0) revert InferenceEscrow_UnknownRequest(requestId);
            revert InferenceEscrow_NotPending(requestId, status);
        }
        if (reason == SkipReason.DeadlinePassed) {
            revert InferenceEscrow_DeadlinePassed(requestId, _requests[requestId].deadline);
        }
        if (reason == SkipReason.Mismatch) revert InferenceEscrow_AttestationMismatch(requestId);
        if (reason == SkipReason.InvalidSignature) revert InferenceEscrow_InvalidSignature(requestId);
        if (reason == SkipReason.NotDesignated) revert InferenceEscrow_NotDesignatedRelayer(requestId, signer);
        revert InferenceEscrow_NotActiveRelayer(signer);
    }

    // ------------------------------------------------------------------ internal: refunds

    /// @dev Ends a pending request as rejected or refunded and returns its price to the caller's credit.
    function _returnToCaller(uint256 requestId, uint8 newStatus) private {
        Request storage request = _requests[requestId];
        uint8 status = request.status;
        if (status == 0) revert InferenceEscrow_UnknownRequest(requestId);
        if (status != STATUS_PENDING) revert InferenceEscrow_NotPending(requestId, status);

        _addCredit(_callerOf(requestId), _end(request, newStatus));
    }

    /// @dev Ends a request: keeps only its status and frees the rest of its storage for the gas
    /// refund. Returns the price it had locked.
    function _end(Request storage request, uint8 newStatus) private returns (uint256 price) {
        price = request.price;
        bool designated = request.designated;
        request.price = 0;
        request.modelId = 0;
        request.version = 0;
        request.deadline = 0;
        request.status = newStatus;
        request.designated = false;
        request.inputHash = bytes32(0);
        if (designated) request.relayer = address(0);
    }

    // ------------------------------------------------------------------ internal: credit and fees

    function _addCredit(address account, uint256 amount) private {
        CallerAccount storage caller = _accounts[account];
        uint256 credit = caller.credit + amount;
        if (credit > type(uint160).max) revert InferenceEscrow_CreditOverflow(account, caller.credit, type(uint160).max);
        caller.credit = uint160(credit);
    }

    function _feesInForce() private view returns (FeeConfig memory fees) {
        fees = _fees;
        if (fees.nextAt != 0 && block.timestamp >= fees.nextAt) {
            fees.protocolFeeBps = fees.nextProtocolFeeBps;
            fees.relayerFeeBps = fees.nextRelayerFeeBps;
        }
    }

    /// @dev The fees the next change starts from: a pending change, or those in force.
    function _scheduledFees() private view returns (uint16 protocolBps, uint16 relayerBps) {
        FeeConfig memory fees = _fees;
        if (fees.nextAt != 0) return (fees.nextProtocolFeeBps, fees.nextRelayerFeeBps);
        return (fees.protocolFeeBps, fees.relayerFeeBps);
    }

    function _scheduleFees(uint16 protocolBps, uint16 relayerBps) private {
        FeeConfig memory inForce = _feesInForce();
        uint64 effectiveAt = uint64(block.timestamp + termsNoticePeriod);
        FeeConfig storage fees = _fees;
        fees.protocolFeeBps = inForce.protocolFeeBps;
        fees.relayerFeeBps = inForce.relayerFeeBps;
        fees.nextProtocolFeeBps = protocolBps;
        fees.nextRelayerFeeBps = relayerBps;
        // uint32 seconds last until the year 2106.
        fees.nextAt = uint32(effectiveAt);
        emit FeesEffectiveAt(protocolBps, relayerBps, effectiveAt);
    }

    function _checkFees(uint16 protocolBps, uint16 relayerBps) private pure {
        if (protocolBps > MAX_PROTOCOL_FEE_BPS) revert InferenceEscrow_FeeTooHigh(protocolBps, MAX_PROTOCOL_FEE_BPS);
        if (relayerBps > MAX_RELAYER_FEE_BPS) revert InferenceEscrow_FeeTooHigh(relayerBps, MAX_RELAYER_FEE_BPS);
    }

    // ------------------------------------------------------------------ internal: signatures and ids

    /// @dev Whether `digest` was signed by `account`'s own key or by its receipt signer in force.
    /// ECDSA only: no call out, so the answer cannot change between a relayer's check and here.
    function _signedBy(address account, bytes32 digest, bytes calldata signature) private view returns (bool) {
        // The third value only details the error; any error means "not signed".
        // slither-disable-next-line unused-return
        (address signer, ECDSA.RecoverError recoverError,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (recoverError != ECDSA.RecoverError.NoError) return false;
        if (signer == account) return true;
        address delegated = _signerInForce(_signers[account]);
        return delegated != address(0) && signer == delegated;
    }

    function _signerInForce(ReceiptSigner storage key) private view returns (address) {
        uint256 nextAt = key.nextAt;
        if (nextAt != 0 && block.timestamp >= nextAt) return key.next;
        return key.current;
    }

    function _channelKey(address caller, address relayer, uint256 modelId) private pure returns (bytes32) {
        return keccak256(abi.encode(caller, relayer, modelId));
    }

    function _requestId(address caller, uint256 number) private pure returns (uint256) {
        return uint256(uint160(caller)) << 96 | number;
    }

    function _callerOf(uint256 requestId) private pure returns (address) {
        return address(uint160(requestId >> 96));
    }
}
