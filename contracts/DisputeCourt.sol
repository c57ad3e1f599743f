// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ExactTransfer} from "./libraries/ExactTransfer.sol";
import {SettlementRecord} from "./libraries/SettlementRecord.sol";
import {IDisputeEscrow} from "./interfaces/IDisputeEscrow.sol";
import {IInferenceEscrow} from "./interfaces/IInferenceEscrow.sol";
import {IRelayerCourt} from "./interfaces/IRelayerCourt.sol";

/// @title DisputeCourt: challenges of relayers' attestations, re-execution by a jury, slashing
/// @notice Anyone may challenge a settled call's attestation within `disputeWindow` of its
/// settlement, posting `challengeBond`: an on-chain call by its settled facts, a fast call by
/// the caller's signed receipt and the relayer's signed attestation of it. `drawDelay` blocks
/// later anyone draws a jury of `jurySize` bonded relayers (weighted by bond; never the accused,
/// the challenger or the caller), who re-run the model version on the input and vote, with
/// commit and reveal, whether the attested output is what it gives. A majority of the seats
/// against the output slashes the accused (`slashAmount` plus the call's price, which refunds
/// the caller), returns the challenger's bond with `challengerReward`, and pays the majority
/// `jurorReward`; a majority for it pays the challenger's bond to the majority (`jurorReward`)
/// and the accused (the rest). Jurors who do not reveal, or vote against the majority, lose
/// `jurorPenalty` of their bond to the majority. Without a majority (too few jurors or votes)
/// nothing is slashed and the challenger's bond comes back. Every payout is pulled with `claim`.
///
/// Terms change with notice: a change applies `disputeWindow` (in force before it) later, so
/// that every call settled before it can still be challenged under the terms it settled under;
/// each dispute keeps the terms it was opened under to its end.
contract DisputeCourt is Ownable2Step, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using ExactTransfer for IERC20;

    // ------------------------------------------------------------------ errors

    error DisputeCourt_UnknownRequest(uint256 requestId);
    error DisputeCourt_NotSettled(uint256 requestId, uint8 status);
    error DisputeCourt_RecordMismatch(uint256 requestId);
    error DisputeCourt_InputMismatch(bytes32 inputHash, bytes32 inputGiven);
    error DisputeCourt_OutputMismatch(bytes32 outputHash, bytes32 outputGiven);
    error DisputeCourt_WindowClosed(uint256 requestId, uint64 closedAt);
    error DisputeCourt_AlreadyDisputed(bytes32 attestation, uint256 disputeId);
    error DisputeCourt_ReceiptMismatch(uint256 requestId);
    error DisputeCourt_InvalidReceiptSignature(uint256 requestId);
    error DisputeCourt_InvalidAttestationSignature(uint256 requestId);
    error DisputeCourt_ReceiptNotSettled(uint256 requestId, uint256 calls, uint256 settledCalls);
    error DisputeCourt_UnknownDispute(uint256 disputeId);
    error DisputeCourt_WrongPhase(uint256 disputeId, uint8 phase);
    error DisputeCourt_DrawTooEarly(uint256 disputeId, uint64 drawBlock);
    error DisputeCourt_NotJuror(uint256 disputeId, address account);
    error DisputeCourt_CommitClosed(uint256 disputeId, uint64 commitDeadline);
    error DisputeCourt_AlreadyCommitted(uint256 disputeId, address juror);
    error DisputeCourt_ZeroCommitment();
    error DisputeCourt_RevealNotOpen(uint256 disputeId, uint64 commitDeadline);
    error DisputeCourt_RevealClosed(uint256 disputeId, uint64 revealDeadline);
    error DisputeCourt_NotCommitted(uint256 disputeId, address juror);
    error DisputeCourt_AlreadyRevealed(uint256 disputeId, address juror);
    error DisputeCourt_InvalidVote(uint8 vote);
    error DisputeCourt_CommitmentMismatch(uint256 disputeId, address juror);
    error DisputeCourt_TooEarlyToResolve(uint256 disputeId, uint64 revealDeadline);
    error DisputeCourt_NothingToClaim(address account);
    error DisputeCourt_InvalidJurySize(uint256 jurySize);
    error DisputeCourt_DrawDelayTooShort(uint256 drawDelay, uint256 minDrawDelay);
    error DisputeCourt_ZeroPeriod();
    error DisputeCourt_ChallengeBondTooLow(uint256 challengeBond, uint256 jurorReward);
    error DisputeCourt_SlashTooLow(uint256 slashAmount, uint256 rewards);
    error DisputeCourt_SlashAboveMinBond(uint256 slashAmount, uint256 minBond);
    error DisputeCourt_UnbondDelayTooShort(uint256 unbondDelay, uint256 required);

    // ------------------------------------------------------------------ events

    /// @notice A challenge of the attestation with EIP-712 digest `attestation`, which said
    /// `accused` ran `version` of `modelId` on `input` (hashing to `inputHash`) for call
    /// `requestId` (an on-chain request id, or a fast call's receipt digest) and got `output`
    /// (hashing to `outputHash`). Jurors re-run exactly that, and compare their output with
    /// `output` under the model's tolerance.
    event DisputeOpened(
        uint256 indexed disputeId,
        uint256 indexed requestId,
        address indexed accused,
        bytes32 attestation,
        address challenger,
        address caller,
        uint256 modelId,
        uint32 version,
        bytes32 inputHash,
        bytes32 outputHash,
        uint256 refund,
        uint32 termsId,
        uint64 drawBlock,
        bytes input,
        bytes output
    );
    /// @notice The jury of dispute `disputeId` (fewer than `jurySize` if the pool ran short);
    /// it commits until `commitDeadline` and reveals after it until `revealDeadline`.
    event JuryDrawn(uint256 indexed disputeId, address[] jurors, uint64 commitDeadline, uint64 revealDeadline);
    event VoteCommitted(uint256 indexed disputeId, address indexed juror, bytes32 commitment);
    event VoteRevealed(uint256 indexed disputeId, address indexed juror, uint8 vote);
    /// @notice Dispute `disputeId` ended with `outcome` (an Outcome); `slashed` was taken from
    /// the accused.
    event DisputeResolved(
        uint256 indexed disputeId, uint8 outcome, uint256 votesMatch, uint256 votesWrong, uint256 slashed
    );
    /// @notice `juror` lost `amount` of its bond for not revealing or voting against the majority.
    event JurorPenalized(uint256 indexed disputeId, address indexed juror, uint256 amount);
    /// @notice `amount` became claimable by `account` from dispute `disputeId`; `reason` is a Payout.
    event Credited(uint256 indexed disputeId, address indexed account, uint256 amount, uint8 reason);
    event Claimed(address indexed account, uint256 amount);
    /// @notice Terms `termsId` apply to challenges from `effectiveAt` on.
    event TermsChanged(uint32 indexed termsId, Terms terms, uint64 effectiveAt);

    // ------------------------------------------------------------------ types

    /// @notice The parameters of the game; each dispute keeps those in force when it opened.
    struct Terms {
        uint128 challengeBond; // posted by the challenger
        uint128 slashAmount; // taken from a lying relayer's bond, on top of the call's price
        uint128 challengerReward; // to a successful challenger, out of the slash
        uint128 jurorReward; // shared by the majority, out of the slash or the challenger's bond
        uint128 jurorPenalty; // taken from each juror who does not reveal or is in the minority
        uint64 disputeWindow; // seconds after a settlement during which it may be challenged
        uint64 commitPeriod; // seconds from the draw to the end of commits
        uint64 revealPeriod; // seconds from the end of commits to the end of reveals
        uint32 drawDelay; // blocks from the challenge to the first block the jury may be drawn in
        uint8 jurySize; // seats, odd
    }

    enum Phase {
        None,
        AwaitingDraw,
        Voting,
        Resolved
    }

    enum Outcome {
        None,
        OutputWrong, // a majority of the seats found the output is not what the model gives: slashed
        OutputRight, // a majority of the seats found it is: the challenge failed
        NoDecision // no majority of the seats either way (too few jurors or votes)
    }

    /// @notice Why an amount was credited (`Credited.reason`).
    enum Payout {
        None,
        Refund, // the call's price, to its caller
        BondReturned, // the challenge bond, to the challenger
        ChallengerReward,
        JurorReward,
        AccusedAward, // the rest of a failed challenge's bond, to the accused
        Treasury // the rest of a slash, and penalties no majority earned
    }

    struct Dispute {
        // slot 0
        address accused;
        uint32 termsId;
        Phase phase;
        Outcome outcome;
        uint8 jurors;
        uint8 revealed;
        uint8 votesMatch;
        uint8 votesWrong;
        // slot 1
        address challenger;
        uint64 drawBlock;
        // slot 2
        address caller;
        uint64 commitDeadline;
        // slot 3
        uint128 refund;
        uint64 revealDeadline;
        // slot 4
        uint256 requestId;
    }

    /// @dev A drawn juror's seat (1-based; 0: not drawn), commitment and revealed vote (0: none).
    struct Ballot {
        uint8 seat;
        uint8 vote;
        bytes32 commitment;
    }

    /// @notice What a dispute reads as (`getDispute`).
    struct DisputeInfo {
        uint256 requestId;
        address accused;
        address challenger;
        address caller;
        uint256 refund;
        uint32 termsId;
        uint8 phase;
        uint8 outcome;
        uint64 drawBlock;
        uint64 commitDeadline;
        uint64 revealDeadline;
        address[] jurors;
        uint256 revealed;
        uint256 votesMatch;
        uint256 votesWrong;
    }

    // ------------------------------------------------------------------ storage

    /// @notice Vote: the attested output is what the model version gives on the input.
    uint8 public constant VOTE_OUTPUT_MATCHES = 1;
    /// @notice Vote: it is not.
    uint8 public constant VOTE_OUTPUT_WRONG = 2;
    /// @dev InferenceEscrow's status of a settled request.
    uint8 private constant STATUS_FULFILLED = 2;
    /// @notice The most seats a jury may have (loops over a jury stay bounded).
    uint256 public constant MAX_JURY_SIZE = 31;
    /// @notice The least draw delay: the randomness of block challenge + 2 is unknown when the
    /// challenge is sent (a block's prevrandao is known one block ahead).
    uint256 public constant MIN_DRAW_DELAY = 2;
    /// @notice The block time the unbond-delay rule assumes (Ethereum's slot); the bond holds of
    /// open disputes protect slower chains anyway.
    uint256 public constant ASSUMED_BLOCK_SECONDS = 12;

    /// @notice The escrow whose settled calls are challenged.
    IDisputeEscrow public immutable escrow;
    /// @notice The fee token (the escrow's).
    IERC20 public immutable token;
    /// @notice The relayer registry (the escrow's): bonds, holds, slashing, the jury pool.
    IRelayerCourt public immutable relayers;

    /// @notice Disputes opened so far; ids start at 1.
    uint256 public disputeCount;
    /// @notice The dispute of each challenged attestation (by EIP-712 digest; 0: none): one per
    /// attestation, ever.
    mapping(bytes32 attestation => uint256 disputeId) public disputeOf;
    /// @notice Payouts waiting for `claim`.
    mapping(address account => uint256) public claimable;
    /// @notice Challenge bonds of open disputes.
    uint256 public bondsHeld;

    mapping(uint256 disputeId => Dispute) private _disputes;
    mapping(uint256 disputeId => address[]) private _jurors;
    mapping(uint256 disputeId => mapping(address juror => Ballot)) private _ballots;
    /// @dev Calls whose price a slash already refunded (a fast call may be attested twice).
    mapping(uint256 requestId => bool) private _refunded;

    mapping(uint32 termsId => Terms) private _termsById;
    uint32 private _termsId; // in force until _nextTermsAt
    uint32 private _nextTermsId;
    uint64 private _nextTermsAt; // 0: no change pending
    uint32 private _termsCount;

    // ------------------------------------------------------------------ constructor

    /// @param escrow_ The InferenceEscrow; the token and relayer registry are its own.
    /// @param terms_ The first terms (checked as `setTerms` checks them).
    constructor(IDisputeEscrow escrow_, Terms memory terms_) Ownable(msg.sender) {
        escrow = escrow_;
        token = escrow_.token();
        relayers = escrow_.relayers();
        _checkTerms(terms_);
        _termsCount = 1;
        _termsId = 1;
        _termsById[1] = terms_;
        emit TermsChanged(1, terms_, uint64(block.timestamp));
    }

    // ------------------------------------------------------------------ external: challenges

    /// @notice Challenges the attestation that settled an on-chain call, by the call's facts
    /// (read from its InferenceRequested and InferenceFulfilled events and the settlement
    /// block's time), posting the challenge bond (approved to the court first).
    /// @param facts The settled call, as its settlement record holds it.
    /// @param input The call's input bytes (jurors re-run the model on them).
    /// @param output The output bytes the relayer delivered (jurors compare theirs with them).
    /// @return disputeId The new dispute.
    function challengeRequest(SettlementRecord.Facts calldata facts, bytes calldata input, bytes calldata output)
        external
        nonReentrant
        returns (uint256 disputeId)
    {
        uint256 requestId = facts.requestId;
        _checkBytes(facts.inputHash, input, facts.outputHash, output);
        (uint8 status, uint256 record) = escrow.settlementRecord(requestId);
        if (status == 0) revert DisputeCourt_UnknownRequest(requestId);
        if (status != STATUS_FULFILLED) revert DisputeCourt_NotSettled(requestId, status);
        if (record != SettlementRecord.hash(facts)) revert DisputeCourt_RecordMismatch(requestId);
        Terms memory t = _termsById[_termsIdInForce()];
        _checkWindow(requestId, facts.settledAt, t);
        IInferenceEscrow.Attestation memory att = IInferenceEscrow.Attestation(
            requestId, facts.modelId, facts.version, facts.inputHash, facts.outputHash
        );
        disputeId = _open(att, facts.relayer, address(uint160(requestId >> 96)), facts.price, input, output);
    }

    /// @notice Challenges a fast call's attestation: the caller's signed receipt that paid for
    /// the call, the relayer's signed attestation of it (its requestId is the receipt's digest)
    /// and the input, posting the challenge bond. The receipt must be settled (its channel
    /// settled at least its calls); the window runs from the channel's last settlement. The
    /// caller's refund is the receipt's average price per call.
    /// @param receipt The receipt (its relayer is the accused).
    /// @param receiptSignature Its signature by the caller's key or receipt signer in force.
    /// @param att The relayer's attestation of the call.
    /// @param attestationSignature The relayer's EIP-712 signature of `att`.
    /// @param input The call's input bytes.
    /// @param output The output bytes the relayer delivered.
    /// @return disputeId The new dispute.
    function challengeReceipt(
        IInferenceEscrow.Receipt calldata receipt,
        bytes calldata receiptSignature,
        IInferenceEscrow.Attestation calldata att,
        bytes calldata attestationSignature,
        bytes calldata input,
        bytes calldata output
    ) external nonReentrant returns (uint256 disputeId) {
        uint256 requestId = att.requestId;
        if (requestId != uint256(escrow.hashReceipt(receipt)) || att.modelId != receipt.modelId) {
            revert DisputeCourt_ReceiptMismatch(requestId);
        }
        _checkBytes(att.inputHash, input, att.outputHash, output);
        if (!escrow.isReceiptSigned(receipt, receiptSignature)) revert DisputeCourt_InvalidReceiptSignature(requestId);
        // The third value only details the error, which is reported as an invalid signature either way.
        // slither-disable-next-line unused-return
        (address signer, ECDSA.RecoverError recoverError,) =
            ECDSA.tryRecoverCalldata(escrow.hashAttestation(att), attestationSignature);
        if (recoverError != ECDSA.RecoverError.NoError || signer != receipt.relayer) {
            revert DisputeCourt_InvalidAttestationSignature(requestId);
        }
        (uint256 settledCalls, uint256 settledAmount, uint64 settledAt) =
            escrow.channelState(receipt.caller, receipt.relayer, receipt.modelId);
        if (receipt.calls == 0 || receipt.calls > settledCalls) {
            revert DisputeCourt_ReceiptNotSettled(requestId, receipt.calls, settledCalls);
        }
        _checkWindow(requestId, settledAt, _termsById[_termsIdInForce()]);
        // What the caller paid per call on average up to this one (the channel settled at least
        // this receipt's amount: a later receipt's total is never smaller).
        uint256 paid = receipt.amount < settledAmount ? receipt.amount : settledAmount;
        disputeId = _open(att, receipt.relayer, receipt.caller, paid / receipt.calls, input, output);
    }

    // ------------------------------------------------------------------ external: the jury

    /// @notice Draws the jury of a dispute, from the randomness of the block it runs in (at or
    /// after the dispute's draw block); anyone may call it. With fewer than a majority of the
    /// seats drawn the dispute ends at once without a decision (the challenger's bond returns).
    /// @param disputeId A dispute awaiting its draw.
    function drawJury(uint256 disputeId) external nonReentrant {
        Dispute storage d = _existing(disputeId);
        if (d.phase != Phase.AwaitingDraw) revert DisputeCourt_WrongPhase(disputeId, uint8(d.phase));
        if (block.number < d.drawBlock) revert DisputeCourt_DrawTooEarly(disputeId, d.drawBlock);
        Terms storage t = _termsById[d.termsId];

        address[] memory excluded = new address[](3);
        (excluded[0], excluded[1], excluded[2]) = (d.accused, d.challenger, d.caller);
        address[] memory jurors =
            relayers.drawJurors(keccak256(abi.encode(block.prevrandao, disputeId)), t.jurySize, excluded);
        relayers.drawDone();

        uint64 commitDeadline = uint64(block.timestamp) + t.commitPeriod;
        uint64 revealDeadline = commitDeadline + t.revealPeriod;
        if (jurors.length <= t.jurySize / 2) {
            emit JuryDrawn(disputeId, jurors, 0, 0);
            _end(disputeId, d, Outcome.NoDecision, new address[](0));
            return;
        }
        d.phase = Phase.Voting;
        // jurors.length <= jurySize <= MAX_JURY_SIZE fits 8 bits.
        d.jurors = uint8(jurors.length);
        d.commitDeadline = commitDeadline;
        d.revealDeadline = revealDeadline;
        _jurors[disputeId] = jurors;
        for (uint256 i; i < jurors.length; ++i) {
            _ballots[disputeId][jurors[i]].seat = uint8(i + 1);
        }
        emit JuryDrawn(disputeId, jurors, commitDeadline, revealDeadline);
        relayers.holdBonds(jurors);
    }

    /// @notice A drawn juror commits to its vote: keccak256(abi.encode(disputeId, juror, vote,
    /// salt)) (`voteCommitment`), until the commit deadline; once.
    /// @param disputeId A dispute in its voting phase.
    /// @param commitment The commitment.
    function commitVote(uint256 disputeId, bytes32 commitment) external {
        Dispute storage d = _existing(disputeId);
        if (d.phase != Phase.Voting) revert DisputeCourt_WrongPhase(disputeId, uint8(d.phase));
        if (block.timestamp > d.commitDeadline) revert DisputeCourt_CommitClosed(disputeId, d.commitDeadline);
        Ballot storage ballot = _ballots[disputeId][msg.sender];
        if (ballot.seat == 0) revert DisputeCourt_NotJuror(disputeId, msg.sender);
        if (ballot.commitment != 0) revert DisputeCourt_AlreadyCommitted(disputeId, msg.sender);
        if (commitment == 0) revert DisputeCourt_ZeroCommitment();
        ballot.commitment = commitment;
        emit VoteCommitted(disputeId, msg.sender, commitment);
    }

    /// @notice A juror reveals the vote it committed to, after the commit deadline and until the
    /// reveal deadline.
    /// @param disputeId A dispute in its voting phase.
    /// @param vote VOTE_OUTPUT_MATCHES or VOTE_OUTPUT_WRONG.
    /// @param salt The salt of the commitment.
    function revealVote(uint256 disputeId, uint8 vote, bytes32 salt) external {
        Dispute storage d = _existing(disputeId);
        if (d.phase != Phase.Voting) revert DisputeCourt_WrongPhase(disputeId, uint8(d.phase));
        if (block.timestamp <= d.commitDeadline) revert DisputeCourt_RevealNotOpen(disputeId, d.commitDeadline);
        if (block.timestamp > d.revealDeadline) revert DisputeCourt_RevealClosed(disputeId, d.revealDeadline);
        Ballot storage ballot = _ballots[disputeId][msg.sender];
        if (ballot.seat == 0) revert DisputeCourt_NotJuror(disputeId, msg.sender);
        if (ballot.commitment == 0) revert DisputeCourt_NotCommitted(disputeId, msg.sender);
        if (ballot.vote != 0) revert DisputeCourt_AlreadyRevealed(disputeId, msg.sender);
        if (vote != VOTE_OUTPUT_MATCHES && vote != VOTE_OUTPUT_WRONG) revert DisputeCourt_InvalidVote(vote);
        if (voteCommitment(disputeId, msg.sender, vote, salt) != ballot.commitment) {
            revert DisputeCourt_CommitmentMismatch(disputeId, msg.sender);
        }
        ballot.vote = vote;
        d.revealed += 1;
        if (vote == VOTE_OUTPUT_MATCHES) d.votesMatch += 1;
        else d.votesWrong += 1;
        emit VoteRevealed(disputeId, msg.sender, vote);
    }

    /// @notice Ends a dispute after its reveal deadline (or once every juror revealed) and books
    /// every payout; anyone may call it, once.
    /// @param disputeId A dispute in its voting phase.
    function resolve(uint256 disputeId) external nonReentrant {
        Dispute storage d = _existing(disputeId);
        if (d.phase != Phase.Voting) revert DisputeCourt_WrongPhase(disputeId, uint8(d.phase));
        if (block.timestamp <= d.revealDeadline && d.revealed < d.jurors) {
            revert DisputeCourt_TooEarlyToResolve(disputeId, d.revealDeadline);
        }
        uint256 majority = _termsById[d.termsId].jurySize / 2;
        Outcome outcome = d.votesWrong > majority
            ? Outcome.OutputWrong
            : (d.votesMatch > majority ? Outcome.OutputRight : Outcome.NoDecision);
        _end(disputeId, d, outcome, _jurors[disputeId]);
    }

    /// @notice Pays out everything the caller may claim.
    function claim() external nonReentrant {
        uint256 amount = claimable[msg.sender];
        if (amount == 0) revert DisputeCourt_NothingToClaim(msg.sender);
        claimable[msg.sender] = 0;
        emit Claimed(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ external: owner

    /// @notice Sets new terms; they apply to challenges from `disputeWindow` (of the terms in
    /// force now) on, replacing a change still pending. Open disputes keep their t.
    /// @param terms_ The new terms: an odd jury of 3 to MAX_JURY_SIZE seats; a draw delay of at
    /// least MIN_DRAW_DELAY blocks; non-zero periods; a challenge bond of at least the juror
    /// reward; a slash above the challenger's and jurors' rewards and at most the minimum bond;
    /// and an unbond delay longer than a whole dispute (window, draw delay, commit, reveal).
    function setTerms(Terms calldata terms_) external onlyOwner {
        _checkTerms(terms_);
        uint32 inForce = _termsIdInForce();
        uint32 termsId = ++_termsCount;
        _termsById[termsId] = terms_;
        uint64 effectiveAt = uint64(block.timestamp) + _termsById[inForce].disputeWindow;
        _termsId = inForce;
        _nextTermsId = termsId;
        _nextTermsAt = effectiveAt;
        emit TermsChanged(termsId, terms_, effectiveAt);
    }

    // ------------------------------------------------------------------ external: views

    /// @notice The terms challenges are opened under now.
    function terms() external view returns (Terms memory) {
        return _termsById[_termsIdInForce()];
    }

    /// @notice The id of the terms in force now (each dispute records the id it opened under).
    function termsIdInForce() external view returns (uint32) {
        return _termsIdInForce();
    }

    /// @notice Terms by id.
    function termsById(uint32 termsId) external view returns (Terms memory) {
        return _termsById[termsId];
    }

    /// @notice A change of terms not in force yet: its id and when it applies (0, 0: none).
    function pendingTerms() external view returns (uint32 termsId, uint64 effectiveAt) {
        // _nextTermsAt == 0 is the "nothing scheduled" mark, not a balance.
        // slither-disable-next-line incorrect-equality
        if (_nextTermsAt == 0 || block.timestamp >= _nextTermsAt) return (0, 0);
        return (_nextTermsId, _nextTermsAt);
    }

    /// @notice A dispute: its parties, refund, terms, phase, outcome, deadlines, jury and votes.
    function getDispute(uint256 disputeId) external view returns (DisputeInfo memory info) {
        Dispute storage d = _existing(disputeId);
        info = DisputeInfo(
            d.requestId,
            d.accused,
            d.challenger,
            d.caller,
            d.refund,
            d.termsId,
            uint8(d.phase),
            uint8(d.outcome),
            d.drawBlock,
            d.commitDeadline,
            d.revealDeadline,
            _jurors[disputeId],
            d.revealed,
            d.votesMatch,
            d.votesWrong
        );
    }

    /// @notice A juror's seat in a dispute (0: not drawn), its commitment and its revealed vote (0: none).
    function ballotOf(uint256 disputeId, address juror)
        external
        view
        returns (uint256 seat, bytes32 commitment, uint8 vote)
    {
        Ballot storage ballot = _ballots[disputeId][juror];
        return (ballot.seat, ballot.commitment, ballot.vote);
    }

    /// @notice Whether a slash already refunded call `requestId`'s price.
    function refunded(uint256 requestId) external view returns (bool) {
        return _refunded[requestId];
    }

    /// @notice The commitment to `vote` of `juror` in `disputeId` with `salt`.
    function voteCommitment(uint256 disputeId, address juror, uint8 vote, bytes32 salt) public pure returns (bytes32) {
        return keccak256(abi.encode(disputeId, juror, vote, salt));
    }

    // ------------------------------------------------------------------ internal

    function _open(
        IInferenceEscrow.Attestation memory att,
        address accused,
        address caller,
        uint256 refund,
        bytes calldata input,
        bytes calldata output
    ) private returns (uint256 disputeId) {
        bytes32 attestation = escrow.hashAttestation(att);
        uint256 earlier = disputeOf[attestation];
        if (earlier != 0) revert DisputeCourt_AlreadyDisputed(attestation, earlier);
        uint32 termsId = _termsIdInForce();
        Terms storage t = _termsById[termsId];
        uint256 bond = t.challengeBond;
        uint64 drawBlock = uint64(block.number) + t.drawDelay;

        disputeId = ++disputeCount;
        disputeOf[attestation] = disputeId;
        Dispute storage d = _disputes[disputeId];
        d.accused = accused;
        d.termsId = termsId;
        d.phase = Phase.AwaitingDraw;
        d.challenger = msg.sender;
        d.drawBlock = drawBlock;
        d.caller = caller;
        // A price fits 128 bits (the registry's cap), but a fast call's average per call may not
        // (one receipt pays up to 2**160 - 1). Capped, not cut to its low bits (which turned
        // 2**128 + 5 into 5): no bond holds more than 2**128 - 1, so the cap refunds the same.
        if (refund > type(uint128).max) refund = type(uint128).max;
        d.refund = uint128(refund);
        d.requestId = att.requestId;
        bondsHeld += bond;
        emit DisputeOpened(
            disputeId,
            att.requestId,
            accused,
            attestation,
            msg.sender,
            caller,
            att.modelId,
            att.version,
            att.inputHash,
            att.outputHash,
            refund,
            termsId,
            drawBlock,
            input,
            output
        );

        address[] memory held = new address[](1);
        held[0] = accused;
        relayers.holdBonds(held);
        relayers.drawPending();
        token.pullExact(msg.sender, bond);
    }

    /// @dev Ends a dispute with `outcome` and books every payout; `jurors` are the drawn ones
    /// (none when no jury was formed). The calls out go to the relayer registry only (the
    /// escrow's, fixed at construction), after the dispute is marked resolved, under the guard.
    // slither-disable-next-line reentrancy-no-eth
    function _end(uint256 disputeId, Dispute storage d, Outcome outcome, address[] memory jurors) private {
        Terms memory t = _termsById[d.termsId];
        d.phase = Phase.Resolved;
        d.outcome = outcome;
        bondsHeld -= t.challengeBond;

        uint256 slashed = 0;
        uint256 pool = 0; // for the majority jurors
        uint256 toTreasury = 0;
        uint8 majorityVote = 0; // none: no decision
        if (outcome == Outcome.OutputWrong) {
            majorityVote = VOTE_OUTPUT_WRONG;
            uint256 refund = _refunded[d.requestId] ? 0 : d.refund;
            if (refund != 0) _refunded[d.requestId] = true;
            slashed = relayers.slash(d.accused, t.slashAmount + refund);
            uint256 left = slashed;
            uint256 part = _min(refund, left);
            _credit(disputeId, d.caller, part, Payout.Refund);
            left -= part;
            _credit(disputeId, d.challenger, t.challengeBond, Payout.BondReturned);
            part = _min(t.challengerReward, left);
            _credit(disputeId, d.challenger, part, Payout.ChallengerReward);
            left -= part;
            pool = _min(t.jurorReward, left);
            toTreasury = left - pool;
        } else if (outcome == Outcome.OutputRight) {
            majorityVote = VOTE_OUTPUT_MATCHES;
            // The terms keep challengeBond >= jurorReward.
            pool = t.jurorReward;
            _credit(disputeId, d.accused, t.challengeBond - pool, Payout.AccusedAward);
        } else {
            _credit(disputeId, d.challenger, t.challengeBond, Payout.BondReturned);
        }

        // Penalties: every juror not in the majority (without one: every juror who did not reveal).
        address[] memory majority = new address[](jurors.length);
        uint256 count = 0;
        uint256 penalties = 0;
        for (uint256 i; i < jurors.length; ++i) {
            uint8 vote = _ballots[disputeId][jurors[i]].vote;
            if (majorityVote != 0 ? vote == majorityVote : vote != 0) {
                majority[count++] = jurors[i];
            } else if (t.jurorPenalty != 0) {
                uint256 taken = relayers.slash(jurors[i], t.jurorPenalty);
                if (taken != 0) emit JurorPenalized(disputeId, jurors[i], taken);
                penalties += taken;
            }
        }
        if (majorityVote != 0) {
            pool += penalties;
            // Equal parts rounded down; the first juror of the majority (in draw order) takes the rest.
            uint256 share = pool / count;
            // The multiplication after the division is the rounding rule: it gives the remainder.
            // slither-disable-next-line divide-before-multiply
            _credit(disputeId, majority[0], pool - share * (count - 1), Payout.JurorReward);
            for (uint256 i = 1; i < count; ++i) {
                _credit(disputeId, majority[i], share, Payout.JurorReward);
            }
        } else {
            toTreasury += penalties;
        }
        _credit(disputeId, escrow.treasury(), toTreasury, Payout.Treasury);

        emit DisputeResolved(disputeId, uint8(outcome), d.votesMatch, d.votesWrong, slashed);
        address[] memory held = new address[](jurors.length + 1);
        held[0] = d.accused;
        for (uint256 i; i < jurors.length; ++i) {
            held[i + 1] = jurors[i];
        }
        relayers.releaseBonds(held);
    }

    function _credit(uint256 disputeId, address account, uint256 amount, Payout reason) private {
        if (amount == 0) return;
        claimable[account] += amount;
        emit Credited(disputeId, account, amount, uint8(reason));
    }

    /// @dev The input and output bytes must be those the attestation hashes.
    function _checkBytes(bytes32 inputHash, bytes calldata input, bytes32 outputHash, bytes calldata output)
        private
        pure
    {
        bytes32 given = keccak256(input);
        if (given != inputHash) revert DisputeCourt_InputMismatch(inputHash, given);
        given = keccak256(output);
        if (given != outputHash) revert DisputeCourt_OutputMismatch(outputHash, given);
    }

    function _checkWindow(uint256 requestId, uint64 settledAt, Terms memory t) private view {
        uint64 closedAt = settledAt + t.disputeWindow;
        if (block.timestamp > closedAt) revert DisputeCourt_WindowClosed(requestId, closedAt);
    }

    function _existing(uint256 disputeId) private view returns (Dispute storage d) {
        d = _disputes[disputeId];
        if (d.phase == Phase.None) revert DisputeCourt_UnknownDispute(disputeId);
    }

    function _termsIdInForce() private view returns (uint32) {
        if (_nextTermsAt != 0 && block.timestamp >= _nextTermsAt) return _nextTermsId;
        return _termsId;
    }

    /// @dev The rules that make lying unprofitable and keep every payout covered (docs/disputes.md).
    function _checkTerms(Terms memory t) private view {
        if (t.jurySize < 3 || t.jurySize > MAX_JURY_SIZE || t.jurySize % 2 == 0) {
            revert DisputeCourt_InvalidJurySize(t.jurySize);
        }
        if (t.drawDelay < MIN_DRAW_DELAY) revert DisputeCourt_DrawDelayTooShort(t.drawDelay, MIN_DRAW_DELAY);
        if (t.disputeWindow == 0 || t.commitPeriod == 0 || t.revealPeriod == 0) revert DisputeCourt_ZeroPeriod();
        if (t.challengeBond == 0 || t.challengeBond < t.jurorReward) {
            revert DisputeCourt_ChallengeBondTooLow(t.challengeBond, t.jurorReward);
        }
        uint256 rewards = uint256(t.challengerReward) + t.jurorReward;
        if (t.slashAmount <= rewards) revert DisputeCourt_SlashTooLow(t.slashAmount, rewards);
        uint256 minBond = relayers.minBond();
        if (t.slashAmount > minBond) revert DisputeCourt_SlashAboveMinBond(t.slashAmount, minBond);
        uint256 dispute = uint256(t.disputeWindow) + uint256(t.drawDelay) * ASSUMED_BLOCK_SECONDS + t.commitPeriod
            + t.revealPeriod;
        uint256 unbondDelay = relayers.unbondDelay();
        if (unbondDelay <= dispute) revert DisputeCourt_UnbondDelayTooShort(unbondDelay, dispute + 1);
    }

    function _min(uint256 a, uint256 b) private pure returns (uint256) {
        return a < b ? a : b;
    }
}
