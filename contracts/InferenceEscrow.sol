// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
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
/// Off-chain calls: a caller pays a relayer with EIP-712 `Receipt`s whose `calls` and `amount`
/// add up over the channel (caller, relayer, model); `settleReceipts` pays each channel's
/// increase since its last settled receipt out of the caller's credit, split the same way. An
/// account that signs receipts turns on `enableReceipts` first: from then on its credit leaves
/// only `withdrawalDelay` seconds after `announceWithdrawal`, so relayers can settle first.
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
    error InferenceEscrow_InvalidRejectReason(uint8 reason);
    error InferenceEscrow_LengthMismatch(uint256 attestations, uint256 signatures);
    error InferenceEscrow_FeeTooHigh(uint256 bps, uint256 maxBps);
    error InferenceEscrow_CreditOverflow(address account, uint256 credit, uint256 maxCredit);
    error InferenceEscrow_WithdrawalNotAnnounced(address account, uint256 announced, uint256 amount);
    error InferenceEscrow_WithdrawalNotReady(address account, uint64 readyAt);
    error InferenceEscrow_NoWithdrawalDelay(address account);

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
    event InferenceFulfilled(uint256 indexed requestId, address indexed relayer, bytes32 outputHash);
    event InferenceRejected(uint256 indexed requestId, address indexed relayer, uint8 reason);
    event InferenceRefunded(uint256 indexed requestId);
    /// @notice An item of `fulfillBatch` that could not settle; `reason` is a `SkipReason`.
    event InferenceSkipped(uint256 indexed requestId, uint8 reason);
    event EarningsWithdrawn(address indexed account, uint256 amount);
    event ProtocolFeeChanged(uint16 oldBps, uint16 newBps);
    event RelayerFeeChanged(uint16 oldBps, uint16 newBps);
    event TreasuryChanged(address indexed oldTreasury, address indexed newTreasury);
    /// @notice `account` may now sign receipts; its withdrawals wait for `withdrawalDelay`.
    event ReceiptsEnabled(address indexed account);
    /// @notice `account` may withdraw up to `amount` of credit from `readyAt` on (0, 0: cancelled).
    event WithdrawalAnnounced(address indexed account, uint256 amount, uint64 readyAt);
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
        NotActiveRelayer // the signer is not (or no longer) a bonded, active relayer
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
        InvalidSignature, // not signed by the caller (an EOA key or its ERC-1271 wallet)
        NotActiveRelayer, // the relayer is not (or no longer) bonded and active
        UnknownModel,
        Underpriced, // the increase pays less than the model's receipt price per call
        InsufficientCredit // the increase is more than the caller's credit
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
    /// @notice A channel counts at most this many calls, so that no model's call count can be
    /// pushed to overflow by a handful of receipts for a free model.
    uint256 public constant MAX_CHANNEL_CALLS = type(uint64).max;

    // ------------------------------------------------------------------ storage

    /// @dev One call. Slot 0 and the input hash are all that settlement reads; the caller sits
    /// in its own slot because only rejections and refunds need it. When a request ends, slot 0
    /// keeps only the status and the input hash is cleared, for the storage refund.
    struct Request {
        uint128 price;
        uint48 modelId;
        uint32 version;
        uint40 deadline;
        uint8 status;
        bytes32 inputHash;
        address caller;
    }

    /// @dev Full words: a receipt may add up to 2**64 - 1 calls and 2**160 - 1 tokens at once, so
    /// packed counters could be pushed to overflow, and a checked overflow would block every
    /// later settlement of the model.
    struct ModelStats {
        uint256 calls;
        uint256 revenue;
    }

    /// @dev A caller's credit and the number of requests it has made, in one slot: a request
    /// debits the credit and takes the next number with a single storage write.
    struct CallerAccount {
        uint160 credit;
        uint96 requests;
    }

    /// @dev What has been settled of a channel (caller, relayer, model): its latest settled
    /// receipt's totals.
    struct Channel {
        uint96 calls;
        uint160 amount;
    }

    /// @dev The withdrawal delay of an account that signs receipts, and its announced withdrawal.
    struct WithdrawalNotice {
        uint160 amount;
        uint40 readyAt;
        bool receiptsEnabled;
    }

    struct FeeConfig {
        address treasury;
        uint16 protocolFeeBps;
        uint16 relayerFeeBps;
    }

    /// @notice The fee token.
    IERC20 public immutable token;
    /// @notice The model registry prices and payees are read from.
    IModelRegistry public immutable registry;
    /// @notice The relayer registry that says who may attest and reject.
    IRelayerRegistry public immutable relayers;
    /// @notice Seconds a relayer has to serve a call before the caller can take a refund.
    uint64 public immutable requestTimeout;
    /// @notice Seconds between `announceWithdrawal` and `withdraw` for accounts that sign receipts.
    uint64 public immutable withdrawalDelay;

    FeeConfig private _fees;

    mapping(address account => CallerAccount) private _accounts;
    /// @notice Released revenue waiting for `withdrawEarnings` (payees, relayers, treasury).
    mapping(address account => uint256) public earningsOf;

    mapping(uint256 requestId => Request) private _requests;
    // Both written through storage pointers, which Slither does not follow.
    // slither-disable-next-line uninitialized-state
    mapping(bytes32 channelKey => Channel) private _channels;
    // slither-disable-next-line uninitialized-state
    mapping(address account => WithdrawalNotice) private _notices;
    // Written through a storage pointer in _settle, which Slither does not follow.
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
        uint256 receiptPrice; // of `modelId`, when its terms were read for receipts
    }

    // ------------------------------------------------------------------ constructor

    /// @param token_ The fee token.
    /// @param registry_ The ModelRegistry.
    /// @param relayers_ The RelayerRegistry.
    /// @param treasury_ Receives the protocol fee.
    /// @param protocolFeeBps_ At most 1_000 (10%).
    /// @param relayerFeeBps_ At most 3_000 (30%).
    /// @param requestTimeout_ Seconds from a request to its deadline.
    /// @param withdrawalDelay_ Seconds an account that signs receipts waits to withdraw credit.
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
        setTreasury(treasury_);
        setProtocolFeeBps(protocolFeeBps_);
        setRelayerFeeBps(relayerFeeBps_);
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

    /// @notice Sends `amount` of the caller's free credit back to it. An account that has
    /// enabled receipts withdraws only what it announced, from `readyAt` on.
    function withdraw(uint256 amount) external nonReentrant {
        if (amount == 0) revert InferenceEscrow_ZeroAmount();
        CallerAccount storage account = _accounts[msg.sender];
        uint256 credit = account.credit;
        if (credit < amount) revert InferenceEscrow_InsufficientCredit(msg.sender, credit, amount);
        WithdrawalNotice storage notice = _notices[msg.sender];
        if (notice.receiptsEnabled) {
            uint256 announced = notice.amount;
            if (announced < amount) revert InferenceEscrow_WithdrawalNotAnnounced(msg.sender, announced, amount);
            if (block.timestamp < notice.readyAt) revert InferenceEscrow_WithdrawalNotReady(msg.sender, notice.readyAt);
            unchecked {
                notice.amount = uint160(announced - amount);
            }
        }
        unchecked {
            account.credit = uint160(credit - amount);
        }
        emit Withdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    /// @notice Lets the caller sign receipts. From now on its credit is withdrawn in two steps,
    /// `announceWithdrawal` and, `withdrawalDelay` seconds later, `withdraw`; this cannot be undone.
    function enableReceipts() external {
        WithdrawalNotice storage notice = _notices[msg.sender];
        if (notice.receiptsEnabled) return;
        notice.receiptsEnabled = true;
        emit ReceiptsEnabled(msg.sender);
    }

    /// @notice Announces a withdrawal of up to `amount` of credit, possible `withdrawalDelay`
    /// seconds from now; replaces any earlier announcement (0 cancels). Relayers holding unsettled
    /// receipts settle them in the meantime. Credit stays usable until it is withdrawn.
    function announceWithdrawal(uint256 amount) external {
        WithdrawalNotice storage notice = _notices[msg.sender];
        if (!notice.receiptsEnabled) revert InferenceEscrow_NoWithdrawalDelay(msg.sender);
        if (amount > type(uint160).max) {
            revert InferenceEscrow_CreditOverflow(msg.sender, amount, type(uint160).max);
        }
        uint64 readyAt = amount == 0 ? 0 : uint64(block.timestamp + withdrawalDelay);
        notice.amount = uint160(amount);
        // uint40 seconds last until the year 36812.
        notice.readyAt = uint40(readyAt);
        emit WithdrawalAnnounced(msg.sender, amount, readyAt);
    }

    // ------------------------------------------------------------------ external: calls

    /// @notice Pays for one call: locks the model's current price from the caller's credit.
    /// @param modelId The model to run.
    /// @param version The version to run; 0 means the latest, resolved now.
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
        // The registry caps prices at 2**128 - 1 and numbers models from 1, so neither cast
        // truncates; uint40 seconds last until the year 36812.
        _requests[requestId] = Request({
            price: uint128(price),
            modelId: uint48(modelId),
            version: version,
            deadline: uint40(block.timestamp + requestTimeout),
            status: STATUS_PENDING,
            inputHash: inputHash,
            caller: msg.sender
        });
        emit InferenceRequested(requestId, modelId, version, msg.sender, price, inputHash, input);
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

    /// @notice Settles off-chain calls: pays each receipt's channel its increase since the last
    /// settled receipt, out of the caller's credit, split like any fee. Anyone may submit; an item
    /// that cannot settle is skipped with `ReceiptSkipped` and the others settle.
    /// @param receipts Receipts, at most one per channel is useful (only the newest pays).
    /// @param signatures Each receipt's caller's EIP-712 signature, or its ERC-1271 wallet's.
    function settleReceipts(Receipt[] calldata receipts, bytes[] calldata signatures) external nonReentrant {
        uint256 count = receipts.length;
        if (signatures.length != count) revert InferenceEscrow_LengthMismatch(count, signatures.length);
        Settlement memory run = _startSettlement();
        for (uint256 i; i < count; ++i) {
            Receipt calldata receipt = receipts[i];
            ReceiptSkipReason reason = _settleReceipt(run, receipt, signatures[i]);
            if (reason != ReceiptSkipReason.None) {
                emit ReceiptSkipped(receipt.caller, receipt.relayer, receipt.modelId, receipt.calls, uint8(reason));
            }
        }
        _finishSettlement(run);
    }

    /// @notice A relayer declares a pending call unservable; the caller gets the full price back.
    /// @param reason 1 input does not fit the model, 2 model error, 3 model file unavailable or
    /// not matching its digest, 4 other.
    function reject(uint256 requestId, uint8 reason) external {
        if (reason < REJECT_BAD_INPUT || reason > REJECT_OTHER) revert InferenceEscrow_InvalidRejectReason(reason);
        if (!relayers.isActive(msg.sender)) revert InferenceEscrow_NotActiveRelayer(msg.sender);
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

    /// @notice Sets the treasury's share of each fee, at most 1_000 bps; applies to settlements from now on.
    function setProtocolFeeBps(uint16 bps) public onlyOwner {
        if (bps > MAX_PROTOCOL_FEE_BPS) revert InferenceEscrow_FeeTooHigh(bps, MAX_PROTOCOL_FEE_BPS);
        emit ProtocolFeeChanged(_fees.protocolFeeBps, bps);
        _fees.protocolFeeBps = bps;
    }

    /// @notice Sets the serving relayer's share of each fee, at most 3_000 bps; applies to settlements from now on.
    function setRelayerFeeBps(uint16 bps) public onlyOwner {
        if (bps > MAX_RELAYER_FEE_BPS) revert InferenceEscrow_FeeTooHigh(bps, MAX_RELAYER_FEE_BPS);
        emit RelayerFeeChanged(_fees.relayerFeeBps, bps);
        _fees.relayerFeeBps = bps;
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

    /// @notice One request. After it ends only `status` is kept; the rest reads as zero except the caller.
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
        return (r.caller, r.modelId, r.version, r.price, r.inputHash, r.deadline, r.status);
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

    /// @notice The treasury's share of each fee, in bps.
    function protocolFeeBps() external view returns (uint16) {
        return _fees.protocolFeeBps;
    }

    /// @notice The serving relayer's share of each fee, in bps.
    function relayerFeeBps() external view returns (uint16) {
        return _fees.relayerFeeBps;
    }

    /// @notice Whether `account` signs receipts, and the withdrawal it has announced.
    function withdrawalNotice(address account)
        external
        view
        returns (bool receiptsEnabled, uint256 announced, uint64 readyAt)
    {
        WithdrawalNotice storage notice = _notices[account];
        return (notice.receiptsEnabled, notice.amount, notice.readyAt);
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

    // ------------------------------------------------------------------ internal: settlement

    function _startSettlement() private view returns (Settlement memory run) {
        run.fees = _fees;
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

    /// @dev Checks one receipt and, if it holds, pays its channel's increase. Returns why it
    /// did not settle (ReceiptSkipReason.None when it did).
    function _settleReceipt(Settlement memory run, Receipt calldata receipt, bytes calldata signature)
        private
        returns (ReceiptSkipReason)
    {
        if (block.timestamp > receipt.deadline) return ReceiptSkipReason.Expired;
        if (receipt.calls > MAX_CHANNEL_CALLS || receipt.amount > type(uint160).max) return ReceiptSkipReason.NotNewer;
        address caller = receipt.caller;
        address relayer = receipt.relayer;
        uint256 modelId = receipt.modelId;
        Channel storage settled = _channels[_channelKey(caller, relayer, modelId)];
        uint256 settledCalls = settled.calls;
        uint256 settledAmount = settled.amount;
        if (receipt.calls <= settledCalls || receipt.amount < settledAmount) return ReceiptSkipReason.NotNewer;

        if (!_signedBy(caller, hashReceipt(receipt), signature)) return ReceiptSkipReason.InvalidSignature;
        // The cache starts at address(0), which is never a relayer: check it like any other
        // rather than let a receipt naming it book the relayer's part where nobody can withdraw it.
        if (relayer != run.activeRelayer || relayer == address(0)) {
            if (!relayers.isActive(relayer)) return ReceiptSkipReason.NotActiveRelayer;
            run.activeRelayer = relayer;
        }
        if (modelId != run.modelId || run.payees.length == 0) {
            // One registry call per model per batch: the receipt price and the payees (which
            // _book then finds cached).
            bool exists;
            (exists, run.receiptPrice, run.payees, run.shares) = registry.receiptTerms(modelId);
            if (!exists) return ReceiptSkipReason.UnknownModel;
            run.modelId = modelId;
        }
        uint256 receiptPrice = run.receiptPrice;
        uint256 newCalls;
        uint256 paid;
        unchecked {
            // Both totals were checked to be at least the settled ones and within range.
            newCalls = receipt.calls - settledCalls;
            paid = receipt.amount - settledAmount;
        }
        // newCalls < 2**64 and receiptPrice < 2**128: the product fits.
        if (paid < newCalls * receiptPrice) return ReceiptSkipReason.Underpriced;
        CallerAccount storage account = _accounts[caller];
        uint256 credit = account.credit;
        if (paid > credit) return ReceiptSkipReason.InsufficientCredit;

        // Effects: the channel and the caller's credit first, then the money is booked.
        settled.calls = uint96(receipt.calls);
        settled.amount = uint160(receipt.amount);
        unchecked {
            account.credit = uint160(credit - paid);
        }
        ModelStats storage stats = _stats[modelId];
        stats.calls += newCalls;
        stats.revenue += paid;

        _book(run, relayer, modelId, paid);
        emit ReceiptSettled(caller, relayer, modelId, receipt.calls, receipt.amount, paid);
        return ReceiptSkipReason.None;
    }

    /// @dev Splits `price` by FeeSplit: treasury and relayer parts accumulate in `run`, payee
    /// parts go straight to earnings (in a batch their slots are warm after the first item).
    function _book(Settlement memory run, address relayer, uint256 modelId, uint256 price) private {
        (uint256 protocolPart, uint256 relayerPart, uint256 payeePart) =
            FeeSplit.split(price, run.fees.protocolFeeBps, run.fees.relayerFeeBps);

        run.treasuryEarned += protocolPart;
        if (relayer != run.relayer) {
            _credit(run.relayer, run.relayerEarned);
            run.relayer = relayer;
            run.relayerEarned = 0;
        }
        run.relayerEarned += relayerPart;

        if (modelId != run.modelId) {
            // Payees are read at settlement: the model's payees now are the ones paid.
            (run.payees, run.shares) = registry.getPayees(modelId);
            run.modelId = modelId;
        }
        address[] memory payees = run.payees;
        uint256 rest = payeePart;
        for (uint256 i = 1; i < payees.length; ++i) {
            uint256 part = FeeSplit.shareOf(payeePart, run.shares[i]);
            rest -= part;
            _credit(payees[i], part);
        }
        _credit(payees[0], rest);
    }

    function _finishSettlement(Settlement memory run) private {
        _credit(run.relayer, run.relayerEarned);
        _credit(run.fees.treasury, run.treasuryEarned);
    }

    function _credit(address account, uint256 amount) private {
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
        revert InferenceEscrow_NotActiveRelayer(signer);
    }

    // ------------------------------------------------------------------ internal: refunds

    /// @dev Ends a pending request as rejected or refunded and returns its price to the caller's credit.
    function _returnToCaller(uint256 requestId, uint8 newStatus) private {
        Request storage request = _requests[requestId];
        uint8 status = request.status;
        if (status == 0) revert InferenceEscrow_UnknownRequest(requestId);
        if (status != STATUS_PENDING) revert InferenceEscrow_NotPending(requestId, status);

        _addCredit(request.caller, _end(request, newStatus));
    }

    /// @dev Ends a request: keeps only its status (and caller) and frees the rest of its
    /// storage for the gas refund. Returns the price it had locked.
    function _end(Request storage request, uint8 newStatus) private returns (uint256 price) {
        price = request.price;
        request.price = 0;
        request.modelId = 0;
        request.version = 0;
        request.deadline = 0;
        request.status = newStatus;
        request.inputHash = bytes32(0);
    }

    // ------------------------------------------------------------------ internal: credit

    function _addCredit(address account, uint256 amount) private {
        CallerAccount storage caller = _accounts[account];
        uint256 credit = caller.credit + amount;
        if (credit > type(uint160).max) revert InferenceEscrow_CreditOverflow(account, caller.credit, type(uint160).max);
        caller.credit = uint160(credit);
    }

    /// @dev Whether `account` signed `digest`: its key (tried first: an EOA's signature needs no
    /// code lookup) or, for a contract wallet, its ERC-1271 `isValidSignature`.
    function _signedBy(address account, bytes32 digest, bytes calldata signature) private view returns (bool) {
        // The third value only details the error; any error means "not this key".
        // slither-disable-next-line unused-return
        (address signer, ECDSA.RecoverError recoverError,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (recoverError == ECDSA.RecoverError.NoError && signer == account) return true;
        return SignatureChecker.isValidERC1271SignatureNowCalldata(account, digest, signature);
    }

    function _channelKey(address caller, address relayer, uint256 modelId) private pure returns (bytes32) {
        return keccak256(abi.encode(caller, relayer, modelId));
    }

    function _requestId(address caller, uint256 number) private pure returns (uint256) {
        return uint256(uint160(caller)) << 96 | number;
    }
}
