// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {WithVm} from "./Vm.sol";
import {HubToken} from "../../contracts/HubToken.sol";
import {ModelRegistry} from "../../contracts/ModelRegistry.sol";
import {RelayerRegistry} from "../../contracts/RelayerRegistry.sol";
import {InferenceEscrow} from "../../contracts/InferenceEscrow.sol";
import {DisputeCourt} from "../../contracts/DisputeCourt.sol";
import {IDisputeEscrow} from "../../contracts/interfaces/IDisputeEscrow.sol";
import {IInferenceEscrow} from "../../contracts/interfaces/IInferenceEscrow.sol";
import {SettlementRecord} from "../../contracts/libraries/SettlementRecord.sol";

/// @title The actor forge's invariant fuzzer drives through disputes
/// @notice Eight bonded relayers serve calls on chain and by receipt, each call honestly or with
/// a made-up output; anyone (a stranger, the caller, a relayer, the accused itself) challenges
/// them, correctly or with forged evidence, at the edges of the window; the jury is drawn, and
/// each relayer votes by its fixed character: honest (commits the truth at once, reveals it),
/// liar (the opposite), lazy (commits, never reveals), absent (never commits) or copycat (commits
/// a copy of another juror's commitment and tries to reveal that juror's vote). Relayers bond,
/// top up, unbond and try to withdraw mid-dispute; the owner changes the terms.
///
/// Each action predicts its outcome from a model written here from the design (who is drawn,
/// from the pool's weights as they stood when the draw was announced; every verdict's payouts
/// and slashes to the wei; each refusal's exact error), performs it and records any difference
/// as a violation. The invariant test checks the violations, conservation across the escrow,
/// the registry and the court, bond holds, and that each dispute ended at most once.
contract DisputeHandler is WithVm {
    uint256 internal constant NR = 8;
    uint256 internal constant NC = 2;
    uint256 internal constant MIN_BOND = 100e18;
    uint64 internal constant UNBOND = 86_400;
    uint256 internal constant PRICE = 1e15 + 3;
    uint256 internal constant MAX_CALLS = 300;
    uint256 internal constant MAX_DISPUTES = 60;
    string internal constant SECOND_LIE = "a second made-up output";

    enum Character {
        Honest,
        Liar,
        Lazy,
        Absent,
        Copycat
    }

    HubToken public token;
    ModelRegistry public registry;
    RelayerRegistry public relayers;
    InferenceEscrow public escrow;
    DisputeCourt public court;

    address public treasury = address(0x7EA5);
    address public author = address(0xA070);
    uint256 internal strangerKey = 0x5742;
    address public stranger;
    uint256[NC] internal callerKeys;
    address[NC] public callers;
    uint256[NR] internal relKeys;
    address[NR] public rel;
    Character[NR] public character;
    uint256 internal modelId;

    // ------------------------------------------------------------------ the model

    uint256[NR] internal gBond;
    bool[NR] internal gRegistered;
    uint64[NR] internal gUnbondAt;
    uint256[NR] public gHolds;
    uint256[NR] internal gWeight; // the jury pool as the model says the registry holds it
    uint256 internal gPending; // draws announced, not made
    uint256 public gBondsHeld;

    struct Call {
        bool fast;
        bool lie; // the attested output is not what the model gives
        uint8 caller;
        uint8 relayer;
        uint256 requestId;
        SettlementRecord.Facts facts; // on-chain calls
        IInferenceEscrow.Receipt receipt; // fast calls
        bytes receiptSig;
        bytes input;
        bool[2] disputed; // by attestation variant (1: a second, made-up output of a fast call)
    }

    Call[] internal calls;
    mapping(uint256 requestId => bool) internal gRefunded;
    mapping(address => mapping(uint256 => uint256)) internal channelCalls; // caller => relayer => calls

    struct GDispute {
        uint256 id;
        uint256 call;
        bool lie;
        uint8 accused;
        address challenger;
        address caller;
        uint256 refund;
        uint32 termsId;
        uint8 phase; // 1 awaiting draw, 2 voting, 3 resolved
        uint8 endings;
        bool revealsDone;
        address[] jurors;
    }

    GDispute[] internal disputes;

    struct Violation {
        string what;
        uint256 a;
        uint256 b;
    }

    Violation[] internal violations;
    mapping(bytes32 => uint256) internal counts;

    // ------------------------------------------------------------------ deployment

    constructor() {
        token = new HubToken();
        registry = new ModelRegistry(3600);
        relayers = new RelayerRegistry(token, MIN_BOND, UNBOND);
        escrow = new InferenceEscrow(token, registry, relayers, treasury, 500, 1_000, 600, 1800);
        court = new DisputeCourt(IDisputeEscrow(address(escrow)), _terms(0));
        relayers.setCourt(address(court));
        stranger = vm.addr(strangerKey);
        for (uint256 i; i < NC; ++i) {
            callerKeys[i] = 0xCA11E0 + i;
            callers[i] = vm.addr(callerKeys[i]);
        }
        for (uint256 i; i < NR; ++i) {
            relKeys[i] = 0xBEEF00 + i;
            rel[i] = vm.addr(relKeys[i]);
            _register(i, MIN_BOND + 20e18 + i * 1e18);
        }
        // Four honest relayers of eight, and one of each other character.
        (character[4], character[5], character[6], character[7]) =
            (Character.Liar, Character.Lazy, Character.Absent, Character.Copycat);
        vm.prank(author);
        modelId = registry.registerModel("m", keccak256("m"), "", PRICE);
        token.mint(address(this), type(uint128).max);
        token.approve(address(escrow), type(uint256).max);
    }

    /// @dev Two valid sets of terms; odd amounts, so that every rounding shows.
    function _terms(uint256 which) internal pure returns (DisputeCourt.Terms memory) {
        if (which == 0) return DisputeCourt.Terms(10e18, 50e18 + 1, 10e18 + 7, 5e18 + 3, 1e18 + 1, 3600, 600, 600, 3, 5);
        return DisputeCourt.Terms(7e18, 30e18, 3e18, 7e18 - 1, 2e18, 1800, 300, 900, 2, 3);
    }

    // ------------------------------------------------------------------ actions: calls

    /// @notice A caller pays an active relayer on chain for a call it serves, truthfully or not.
    function serve(uint256 seed) external {
        uint8 c = uint8(seed % NC);
        (bool found, uint8 r) = _activeRelayer(seed >> 8);
        if (!found || calls.length >= MAX_CALLS) return _count("serve skipped");
        bool lie = (seed >> 16) % 3 == 0;
        bytes memory input = abi.encodePacked("input", calls.length);
        escrow.depositFor(callers[c], PRICE);
        vm.prank(callers[c]);
        uint256 requestId = escrow.requestInference(modelId, 0, input, PRICE);
        IInferenceEscrow.Attestation memory att =
            IInferenceEscrow.Attestation(requestId, modelId, 1, keccak256(input), _output(lie));
        escrow.fulfill(att, _sign(relKeys[r], escrow.hashAttestation(att)));
        Call storage call = calls.push();
        (call.lie, call.caller, call.relayer, call.requestId, call.input) = (lie, c, r, requestId, input);
        call.facts = SettlementRecord.Facts(
            requestId, modelId, 1, PRICE, att.inputHash, att.outputHash, rel[r], uint64(block.timestamp)
        );
        _count("serve");
    }

    /// @notice A fast call: the caller's next receipt on its channel with an active relayer,
    /// attested truthfully or not, and settled (or left for a later settlement).
    function serveFast(uint256 seed) external {
        uint8 c = uint8(seed % NC);
        (bool found, uint8 r) = _activeRelayer(seed >> 8);
        if (!found || calls.length >= MAX_CALLS) return _count("serveFast skipped");
        bool lie = (seed >> 16) % 3 == 0;
        uint256 n = ++channelCalls[callers[c]][r];
        IInferenceEscrow.Receipt memory receipt =
            IInferenceEscrow.Receipt(callers[c], rel[r], modelId, n, n * PRICE, uint64(block.timestamp + 10 days));
        escrow.reserveFor(callers[c], rel[r], PRICE);
        bytes memory receiptSig = _sign(callerKeys[c], escrow.hashReceipt(receipt));
        if ((seed >> 24) % 4 != 0) _settleChannel(receipt, receiptSig, r);
        Call storage call = calls.push();
        (call.fast, call.lie, call.caller, call.relayer, call.input) =
            (true, lie, c, r, abi.encodePacked("fast input", calls.length));
        (call.receipt, call.receiptSig) = (receipt, receiptSig);
        call.requestId = uint256(escrow.hashReceipt(receipt));
        _count("serveFast");
    }

    // ------------------------------------------------------------------ actions: challenges

    /// @notice Challenges a call (or a fast call's second, made-up attestation), by a stranger,
    /// its caller, a relayer or the accused itself, at a random time or exactly at the window's
    /// edge; or with forged evidence (`how` 1 to 5), which must be refused and move nothing.
    function challenge(uint256 pick, uint256 who, uint256 how) external {
        if (calls.length == 0 || disputes.length >= MAX_DISPUTES) return _count("challenge skipped");
        // Mostly one of the newest calls (older ones are mostly past their window), sometimes any.
        uint256 index = (pick >> 32) % 4 == 0 ? pick % calls.length : calls.length - 1 - pick % _min(calls.length, 6);
        Call storage call = calls[index];
        uint256 variant = call.fast && (pick >> 8) % 3 == 0 ? 1 : 0;
        address challenger = _someone(who);
        (uint64 anchor, bool settled) = _anchor(call);
        uint256 edge = (pick >> 16) % 4;
        if (settled && edge != 0) _warpTo(uint256(anchor) + court.terms().disputeWindow + edge - 2); // -1, 0, +1
        DisputeCourt.Terms memory terms = court.terms(); // those in force when the challenge is sent
        uint8 forgery = uint8(how % 8);
        if (forgery > 5) forgery = 0;

        (IInferenceEscrow.Attestation memory att, bytes memory attSig) = _attestation(call, variant);
        bytes memory data = _challengeData(call, att, attSig, forgery);
        bytes4 want = _predictChallenge(call, variant, anchor, settled, terms, forgery);

        token.mint(challenger, terms.challengeBond);
        vm.prank(challenger);
        token.approve(address(court), terms.challengeBond);
        uint256 courtBefore = token.balanceOf(address(court));
        vm.prank(challenger);
        (bool ok, bytes memory ret) = address(court).call(data);
        if (!_expect(ok, ret, want, forgery == 0 ? "challenge" : "forged challenge")) {
            if (token.balanceOf(address(court)) != courtBefore) _violate("a refused challenge moved money", index, 0);
            return;
        }
        call.disputed[variant] = true;
        uint256 id = abi.decode(ret, (uint256));
        GDispute storage d = disputes.push();
        (d.id, d.call, d.lie, d.accused, d.challenger) = (id, index, variant == 1 || call.lie, call.relayer, challenger);
        d.caller = callers[call.caller];
        // A fast call's refund is its receipt's average price per call: every receipt here adds
        // one call at the price, so it is the price, as for an on-chain call.
        d.refund = PRICE;
        d.termsId = court.termsIdInForce();
        d.phase = 1;
        gBondsHeld += terms.challengeBond;
        gHolds[call.relayer] += 1;
        gPending += 1;
        if (court.getDispute(id).refund != d.refund) _violate("the dispute's refund is not the call's price", id, d.refund);
    }

    // ------------------------------------------------------------------ actions: the jury

    /// @notice Draws a dispute's jury (sometimes a block too early), from fresh randomness;
    /// the jury must be the one the model draws from the pool's frozen weights. Drawn jurors
    /// commit at once, each by its character.
    function draw(uint256 pick, uint256 randomness, uint256 early) external {
        (bool found, uint256 k) = _disputeIn(pick, 1);
        if (!found) return _count("draw skipped");
        GDispute storage d = disputes[k];
        uint64 drawBlock = court.getDispute(d.id).drawBlock;
        if (early % 5 == 0 && block.number < drawBlock) {
            vm.prank(stranger);
            (bool ok, bytes memory ret) = address(court).call(abi.encodeCall(DisputeCourt.drawJury, (d.id)));
            _expect(ok, ret, DisputeCourt.DisputeCourt_DrawTooEarly.selector, "draw");
            return;
        }
        if (block.number < drawBlock) vm.roll(drawBlock + early % 3);
        vm.prevrandao(bytes32(randomness));
        address[] memory expected = _expectedJury(d, keccak256(abi.encode(randomness, d.id)));
        vm.prank(stranger);
        (bool ok2, bytes memory ret2) = address(court).call(abi.encodeCall(DisputeCourt.drawJury, (d.id)));
        if (!_expect(ok2, ret2, bytes4(0), "draw")) return;
        gPending -= 1;
        address[] memory jurors = court.getDispute(d.id).jurors;
        DisputeCourt.Terms memory terms = court.termsById(d.termsId);
        if (expected.length <= terms.jurySize / 2) {
            // Too few for a majority of the seats: no jury is seated, the dispute ends.
            if (jurors.length != 0) _violate("a jury without a majority of the seats was seated", jurors.length, 0);
            _count("no jury");
            _checkResolution(k, terms, new address[](0), true);
            return;
        }
        if (keccak256(abi.encode(jurors)) != keccak256(abi.encode(expected))) {
            _violate("the jury is not the one drawn from the frozen pool", jurors.length, expected.length);
        }
        d.phase = 2;
        d.jurors = jurors;
        for (uint256 i; i < jurors.length; ++i) {
            gHolds[_slotOf(jurors[i])] += 1;
        }
        _commitAll(d);
    }

    /// @notice Resolves a voting dispute: sometimes too early (refused unless all revealed),
    /// else after its reveal deadline (jurors reveal on the way); payouts must be the model's.
    function resolve(uint256 pick, uint256 early) external {
        (bool found, uint256 k) = _disputeIn(pick, 2);
        if (!found) return _again(pick);
        GDispute storage d = disputes[k];
        DisputeCourt.DisputeInfo memory info = court.getDispute(d.id);
        if (early % 4 == 0 && block.timestamp <= info.revealDeadline) {
            bool allRevealed = info.revealed == info.jurors.length;
            vm.prank(stranger);
            (bool ok, bytes memory ret) = address(court).call(abi.encodeCall(DisputeCourt.resolve, (d.id)));
            if (!allRevealed) {
                _expect(ok, ret, DisputeCourt.DisputeCourt_TooEarlyToResolve.selector, "early resolve");
                return;
            }
            if (!ok) _violate("a dispute every juror revealed did not resolve", d.id, 0);
            _checkResolution(k, court.termsById(d.termsId), d.jurors, false);
            return;
        }
        _warpTo(uint256(info.revealDeadline) + 1 + early % 100);
        _resolveNow(k);
    }

    /// @notice Resolving or drawing an ended dispute again is refused: it ends exactly once.
    function _again(uint256 pick) internal {
        (bool found, uint256 k) = _disputeIn(pick, 3);
        if (!found) return _count("resolve skipped");
        vm.prank(stranger);
        (bool ok, bytes memory ret) = address(court).call(abi.encodeCall(DisputeCourt.resolve, (disputes[k].id)));
        _expect(ok, ret, DisputeCourt.DisputeCourt_WrongPhase.selector, "resolve again");
        vm.prank(stranger);
        (ok, ret) = address(court).call(abi.encodeCall(DisputeCourt.drawJury, (disputes[k].id)));
        _expect(ok, ret, DisputeCourt.DisputeCourt_WrongPhase.selector, "draw again");
    }

    // ------------------------------------------------------------------ actions: money and time

    /// @notice Someone claims its payouts: exactly what the court owes it moves.
    function claim(uint256 who) external {
        address account = _someone(who);
        uint256 owed = court.claimable(account);
        uint256 before = token.balanceOf(account);
        vm.prank(account);
        (bool ok, bytes memory ret) = address(court).call(abi.encodeCall(DisputeCourt.claim, ()));
        if (!_expect(ok, ret, owed == 0 ? DisputeCourt.DisputeCourt_NothingToClaim.selector : bytes4(0), "claim")) return;
        if (token.balanceOf(account) != before + owed) _violate("a claim paid another amount than owed", owed, 0);
        if (court.claimable(account) != 0) _violate("a claim left something claimable", owed, 0);
        lastClaimable[account] = 0;
    }

    function warp(uint256 seconds_) external {
        _warpTo(block.timestamp + seconds_ % 1800);
        vm.roll(block.number + seconds_ % 7);
        _count("warp");
    }

    /// @notice A relayer begins to unbond, or withdraws (refused while a dispute holds its bond,
    /// however long it waited), or bonds again or tops up.
    function bondMove(uint256 pick, uint256 amount) external {
        uint256 i = pick % NR;
        // Often a relayer in an open dispute: the one with a reason to leave.
        for (uint256 k; k < NR && amount % 3 != 2; ++k) {
            if (gHolds[(i + k) % NR] != 0) {
                i = (i + k) % NR;
                break;
            }
        }
        address r = rel[i];
        if (!gRegistered[i]) {
            _register(i, MIN_BOND + amount % 50e18);
            return _count("register again");
        }
        if (gUnbondAt[i] == 0) {
            if (amount % 5 == 0) {
                vm.prank(r);
                relayers.beginUnbond();
                gUnbondAt[i] = uint64(block.timestamp) + UNBOND;
                _sync(i);
                return _count("beginUnbond");
            }
            uint256 top = 1 + amount % 30e18;
            token.mint(r, top);
            vm.startPrank(r);
            token.approve(address(relayers), top);
            relayers.addBond(top);
            vm.stopPrank();
            gBond[i] += top;
            _sync(i);
            return _count("addBond");
        }
        if (amount % 4 == 0) _warpTo(gUnbondAt[i]);
        bytes4 want = block.timestamp < gUnbondAt[i]
            ? RelayerRegistry.RelayerRegistry_UnbondPending.selector
            : (gHolds[i] != 0 ? RelayerRegistry.RelayerRegistry_BondHeld.selector : bytes4(0));
        vm.prank(r);
        (bool ok, bytes memory ret) = address(relayers).call(abi.encodeCall(RelayerRegistry.withdrawBond, ()));
        string memory what = want == RelayerRegistry.RelayerRegistry_BondHeld.selector ? "withdraw a held bond" : "withdrawBond";
        if (!_expect(ok, ret, want, what)) return;
        (gBond[i], gRegistered[i], gUnbondAt[i]) = (0, false, 0);
        _sync(i);
    }

    /// @notice Anyone brings a relayer's pool weight up to date (a no-op while a draw is pending).
    function syncWeight(uint256 pick) external {
        relayers.syncWeight(rel[pick % NR]);
        _sync(pick % NR);
        _count("syncWeight");
    }

    /// @notice The owner switches between the two sets of terms; they apply a window later.
    function setTerms(uint256 which) external {
        court.setTerms(_terms(which % 2));
        _count("setTerms");
    }

    // ------------------------------------------------------------------ resolution

    function _resolveNow(uint256 k) internal {
        GDispute storage d = disputes[k];
        vm.prank(stranger);
        (bool ok, bytes memory ret) = address(court).call(abi.encodeCall(DisputeCourt.resolve, (d.id)));
        if (!_expect(ok, ret, bytes4(0), "resolve")) return;
        _checkResolution(k, court.termsById(d.termsId), d.jurors, false);
    }

    /// @dev After a dispute ended (resolved, or at a draw without a jury): the model's payouts,
    /// slashes and properties, compared with the contracts.
    function _checkResolution(uint256 k, DisputeCourt.Terms memory terms, address[] memory jurors, bool atDraw) internal {
        GDispute storage d = disputes[k];
        d.phase = 3;
        d.endings += 1;
        gBondsHeld -= terms.challengeBond;
        DisputeCourt.DisputeInfo memory info = court.getDispute(d.id);
        uint256 seats = terms.jurySize;
        uint8 outcome = info.votesWrong > seats / 2 ? 1 : (info.votesMatch > seats / 2 ? 2 : 3);
        if (atDraw) outcome = 3;
        if (info.outcome != outcome) _violate("the outcome is not the model's", info.outcome, outcome);
        _checkProperties(d, jurors, outcome, seats);
        _checkPayouts(d, terms, jurors, outcome);
        // Holds end: the accused's and every juror's.
        gHolds[d.accused] -= 1;
        if (!atDraw) {
            for (uint256 i; i < jurors.length; ++i) {
                gHolds[_slotOf(jurors[i])] -= 1;
            }
        }
        _count(outcome == 1 ? "slashed" : (outcome == 2 ? "upheld" : "no decision"));
    }

    /// @dev An honest relayer is never slashed while most of its drawn jury is honest; a liar
    /// always is when honest jurors hold a majority of the seats.
    function _checkProperties(GDispute storage d, address[] memory jurors, uint8 outcome, uint256 seats) internal {
        uint256 honest;
        for (uint256 i; i < jurors.length; ++i) {
            if (character[_slotOf(jurors[i])] == Character.Honest) ++honest;
        }
        if (!d.lie && honest * 2 > jurors.length && outcome == 1) {
            _violate("an honest relayer was slashed by a mostly honest jury", d.id, honest);
        }
        if (d.lie && honest > seats / 2 && outcome != 1) _violate("a liar escaped an honest majority", d.id, honest);
        if (d.lie && honest > seats / 2) _count("liar caught by an honest majority");
        if (!d.lie && honest * 2 > jurors.length) _count("honest relayer cleared by an honest majority");
    }

    /// @dev Every account's claimable grew by exactly the model's payout; bonds shrank by exactly
    /// the model's slashes.
    function _checkPayouts(GDispute storage d, DisputeCourt.Terms memory t, address[] memory jurors, uint8 outcome)
        internal
    {
        address[] memory who = new address[](jurors.length + 4);
        uint256[] memory amount = new uint256[](jurors.length + 4);
        uint256 pool;
        uint256 toTreasury;
        uint8 majorityVote;
        if (outcome == 1) {
            majorityVote = 2;
            uint256 refund = gRefunded[calls[d.call].requestId] ? 0 : d.refund;
            if (refund != 0) gRefunded[calls[d.call].requestId] = true;
            uint256 left = _take(d.accused, t.slashAmount + refund);
            uint256 part = _min(refund, left);
            (who[0], amount[0]) = (d.caller, part);
            left -= part;
            part = _min(t.challengerReward, left);
            (who[1], amount[1]) = (d.challenger, t.challengeBond + part);
            left -= part;
            pool = _min(t.jurorReward, left);
            toTreasury = left - pool;
        } else if (outcome == 2) {
            majorityVote = 1;
            pool = t.jurorReward;
            (who[0], amount[0]) = (rel[d.accused], t.challengeBond - pool);
        } else {
            (who[0], amount[0]) = (d.challenger, t.challengeBond);
        }
        uint256 count;
        uint256[] memory majority = new uint256[](jurors.length);
        for (uint256 i; i < jurors.length; ++i) {
            (, , uint8 vote) = court.ballotOf(d.id, jurors[i]);
            if (majorityVote != 0 ? vote == majorityVote : vote != 0) {
                majority[count++] = i;
            } else {
                uint256 taken = _take(_slotOf(jurors[i]), t.jurorPenalty);
                if (majorityVote != 0) pool += taken;
                else toTreasury += taken;
            }
        }
        if (count != 0) {
            uint256 share = pool / count;
            for (uint256 i; i < count; ++i) {
                (who[2 + i], amount[2 + i]) = (jurors[majority[i]], i == 0 ? pool - share * (count - 1) : share);
            }
        }
        (who[jurors.length + 3], amount[jurors.length + 3]) = (treasury, toTreasury);
        _compareCredits(who, amount);
    }

    /// @dev The model's credits against the change of every account's claimable since the last check.
    function _compareCredits(address[] memory who, uint256[] memory amount) internal {
        address[] memory all = accounts();
        for (uint256 a; a < all.length; ++a) {
            uint256 expected = lastClaimable[all[a]];
            for (uint256 i; i < who.length; ++i) {
                if (who[i] == all[a]) expected += amount[i];
            }
            uint256 actual = court.claimable(all[a]);
            if (actual != expected) _violate("a payout is not the model's", a, actual);
            lastClaimable[all[a]] = actual;
        }
        for (uint256 i; i < NR; ++i) {
            (, uint256 bond,,) = relayers.relayerInfo(rel[i]);
            if (bond != gBond[i]) _violate("a bond is not the model's after a dispute", i, bond);
        }
    }

    mapping(address => uint256) internal lastClaimable;

    /// @dev The model's slash: at most the bond; the pool weight follows unless frozen.
    function _take(uint256 i, uint256 amount) internal returns (uint256 taken) {
        taken = _min(amount, gBond[i]);
        gBond[i] -= taken;
        _sync(i);
    }

    // ------------------------------------------------------------------ votes

    function _commitAll(GDispute storage d) internal {
        bytes32 firstHonest;
        for (uint256 i; i < d.jurors.length; ++i) {
            uint256 j = _slotOf(d.jurors[i]);
            Character who = character[j];
            bytes32 commitment;
            if (who == Character.Absent) continue;
            if (who == Character.Copycat) {
                if (firstHonest == 0) continue;
                commitment = firstHonest;
            } else {
                commitment = court.voteCommitment(d.id, d.jurors[i], _voteOf(d, who), _salt(d.id, d.jurors[i]));
                if (who == Character.Honest && firstHonest == 0) firstHonest = commitment;
            }
            vm.prank(d.jurors[i]);
            (bool ok, bytes memory ret) = address(court).call(abi.encodeCall(DisputeCourt.commitVote, (d.id, commitment)));
            _expect(ok, ret, bytes4(0), "commit");
        }
    }

    /// @dev Reveals of a dispute whose reveal window is open: honest and liar jurors reveal; a
    /// copycat's reveal of the juror it copied must be refused.
    function _revealAll(GDispute storage d) internal {
        d.revealsDone = true;
        address copied;
        for (uint256 i; i < d.jurors.length; ++i) {
            Character who = character[_slotOf(d.jurors[i])];
            if (who == Character.Honest && copied == address(0)) copied = d.jurors[i];
            if (who != Character.Honest && who != Character.Liar && who != Character.Copycat) continue;
            (address as_, uint8 vote) = (d.jurors[i], _voteOf(d, who));
            bytes4 want = bytes4(0);
            if (who == Character.Copycat) {
                (, bytes32 commitment,) = court.ballotOf(d.id, d.jurors[i]);
                if (commitment == 0 || copied == address(0)) continue;
                (as_, vote) = (copied, _voteOf(d, Character.Honest));
                want = DisputeCourt.DisputeCourt_CommitmentMismatch.selector;
            }
            vm.prank(d.jurors[i]);
            (bool ok, bytes memory ret) =
                address(court).call(abi.encodeCall(DisputeCourt.revealVote, (d.id, vote, _salt(d.id, as_))));
            _expect(ok, ret, want, who == Character.Copycat ? "copied reveal" : "reveal");
        }
    }

    function _voteOf(GDispute storage d, Character who) internal view returns (uint8) {
        bool wrong = d.lie != (who == Character.Liar);
        return wrong ? 2 : 1;
    }

    function _salt(uint256 id, address juror) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", id, juror));
    }

    // ------------------------------------------------------------------ the draw, in the model

    /// @dev The jury the model draws: by the pool's weights as the model holds them (frozen
    /// since the draw was announced), never the accused, the challenger or the caller, each
    /// pick keccak(seed, k) modulo the weight left along the slots in order; picks of relayers
    /// that left since are empty seats.
    function _expectedJury(GDispute storage d, bytes32 seed) internal view returns (address[] memory out) {
        uint256 seats = court.termsById(d.termsId).jurySize;
        bool[NR] memory taken;
        taken[d.accused] = true;
        for (uint256 i; i < NR; ++i) {
            if (rel[i] == d.challenger || rel[i] == d.caller) taken[i] = true;
        }
        out = new address[](seats);
        uint256 n;
        for (uint256 k; k < seats; ++k) {
            uint256 left;
            for (uint256 i; i < NR; ++i) {
                if (!taken[i]) left += gWeight[i];
            }
            if (left == 0) break;
            uint256 point = uint256(keccak256(abi.encode(seed, k))) % left;
            for (uint256 i; i < NR; ++i) {
                if (taken[i]) continue;
                if (point < gWeight[i]) {
                    taken[i] = true;
                    if (gRegistered[i]) out[n++] = rel[i];
                    break;
                }
                point -= gWeight[i];
            }
        }
        assembly ("memory-safe") {
            mstore(out, n)
        }
    }

    // ------------------------------------------------------------------ helpers

    function _register(uint256 i, uint256 amount) internal {
        token.mint(rel[i], amount);
        vm.startPrank(rel[i]);
        token.approve(address(relayers), amount);
        relayers.register("http://relayer", amount);
        vm.stopPrank();
        (gBond[i], gRegistered[i], gUnbondAt[i]) = (amount, true, 0);
        _sync(i);
    }

    /// @dev The registry's rule: weight = bond while active, else 0; unchanged while a draw is pending.
    function _sync(uint256 i) internal {
        if (gPending != 0) return;
        bool active = gRegistered[i] && gUnbondAt[i] == 0 && gBond[i] >= MIN_BOND;
        gWeight[i] = active ? gBond[i] : 0;
    }

    function _activeRelayer(uint256 seed) internal view returns (bool, uint8) {
        for (uint256 k; k < NR; ++k) {
            uint8 r = uint8((seed % NR + k) % NR);
            if (relayers.isActive(rel[r])) return (true, r);
        }
        return (false, 0);
    }

    function _settleChannel(IInferenceEscrow.Receipt memory receipt, bytes memory sig, uint8 r) internal {
        IInferenceEscrow.Receipt[] memory rs = new IInferenceEscrow.Receipt[](1);
        bytes[] memory sigs = new bytes[](1);
        (rs[0], sigs[0]) = (receipt, sig);
        vm.prank(rel[r]);
        escrow.settleReceipts(rs, sigs);
    }

    function _output(bool lie) internal pure returns (bytes32) {
        return keccak256(_outputBytes(lie));
    }

    function _outputBytes(bool lie) internal pure returns (bytes memory) {
        return lie ? bytes("made-up output") : bytes("the model's output");
    }

    /// @dev The output bytes an attestation here hashes (a challenge shows them).
    function _preimage(bytes32 outputHash) internal pure returns (bytes memory) {
        if (outputHash == _output(true)) return _outputBytes(true);
        if (outputHash == _output(false)) return _outputBytes(false);
        return bytes(SECOND_LIE);
    }

    function _attestation(Call storage call, uint256 variant)
        internal
        view
        returns (IInferenceEscrow.Attestation memory att, bytes memory sig)
    {
        if (!call.fast) {
            att = IInferenceEscrow.Attestation(
                call.requestId, modelId, 1, call.facts.inputHash, call.facts.outputHash
            );
            return (att, "");
        }
        bytes32 output = variant == 1 ? keccak256(bytes(SECOND_LIE)) : _output(call.lie);
        att = IInferenceEscrow.Attestation(call.requestId, modelId, 1, keccak256(call.input), output);
        sig = _sign(relKeys[call.relayer], escrow.hashAttestation(att));
    }

    /// @dev The challenge's calldata, forged as asked: 1 wrong input, 2 tampered facts or
    /// receipt, 3 a receipt signed by someone else, 4 an attestation signed by someone else,
    /// 5 output bytes other than those attested.
    function _challengeData(
        Call storage call,
        IInferenceEscrow.Attestation memory att,
        bytes memory attSig,
        uint8 forgery
    ) internal view returns (bytes memory) {
        bytes memory input = forgery == 1 ? abi.encodePacked(call.input, "!") : call.input;
        bytes memory output = _preimage(att.outputHash);
        if (forgery == 5) output = abi.encodePacked(output, "!");
        if (!call.fast) {
            SettlementRecord.Facts memory facts = call.facts;
            if (forgery == 2) facts.settledAt += 1;
            if (forgery >= 3) facts.relayer = stranger;
            return abi.encodeCall(DisputeCourt.challengeRequest, (facts, input, output));
        }
        bytes memory receiptSig = call.receiptSig;
        IInferenceEscrow.Receipt memory receipt = call.receipt;
        if (forgery == 2) receipt.amount += 1;
        if (forgery == 3) receiptSig = _sign(strangerKey, escrow.hashReceipt(receipt));
        if (forgery == 4) attSig = _sign(strangerKey, escrow.hashAttestation(att));
        return abi.encodeCall(DisputeCourt.challengeReceipt, (receipt, receiptSig, att, attSig, input, output));
    }

    function _predictChallenge(
        Call storage call,
        uint256 variant,
        uint64 anchor,
        bool settled,
        DisputeCourt.Terms memory terms,
        uint8 forgery
    ) internal view returns (bytes4) {
        if (call.fast && forgery == 2) return DisputeCourt.DisputeCourt_ReceiptMismatch.selector;
        if (forgery == 1) return DisputeCourt.DisputeCourt_InputMismatch.selector;
        if (forgery == 5) return DisputeCourt.DisputeCourt_OutputMismatch.selector;
        if (!call.fast && forgery >= 2) return DisputeCourt.DisputeCourt_RecordMismatch.selector;
        if (forgery == 3) return DisputeCourt.DisputeCourt_InvalidReceiptSignature.selector;
        if (forgery == 4) return DisputeCourt.DisputeCourt_InvalidAttestationSignature.selector;
        if (!settled) return DisputeCourt.DisputeCourt_ReceiptNotSettled.selector;
        if (block.timestamp > uint256(anchor) + terms.disputeWindow) return DisputeCourt.DisputeCourt_WindowClosed.selector;
        if (call.disputed[variant]) return DisputeCourt.DisputeCourt_AlreadyDisputed.selector;
        if (!gRegistered[call.relayer]) return RelayerRegistry.RelayerRegistry_NotRegistered.selector;
        return bytes4(0);
    }

    /// @dev When a call's window started, and whether it is settled (fast: its channel settled it).
    function _anchor(Call storage call) internal view returns (uint64, bool) {
        if (!call.fast) return (call.facts.settledAt, true);
        (uint256 settledCalls,, uint64 settledAt) =
            escrow.channelState(call.receipt.caller, call.receipt.relayer, modelId);
        return (settledAt, settledCalls >= call.receipt.calls);
    }

    function _someone(uint256 who) internal view returns (address) {
        uint256 k = who % (NR + NC + 1);
        if (k < NR) return rel[k];
        if (k < NR + NC) return callers[k - NR];
        return stranger;
    }

    function _slotOf(address account) internal view returns (uint256) {
        for (uint256 i; i < NR; ++i) {
            if (rel[i] == account) return i;
        }
        revert("not a relayer");
    }

    function _disputeIn(uint256 pick, uint8 phase) internal view returns (bool, uint256) {
        uint256 n = disputes.length;
        for (uint256 k; k < n; ++k) {
            uint256 i = (pick % n + k) % n;
            if (disputes[i].phase == phase) return (true, i);
        }
        return (false, 0);
    }

    /// @dev Moves time forward; jurors reveal in each reveal window it crosses (as a daemon
    /// would), earliest window first.
    function _warpTo(uint256 target) internal {
        while (true) {
            (bool found, uint256 k, uint64 commitDeadline) = _nextRevealWindow(target);
            if (!found) break;
            if (block.timestamp <= commitDeadline) vm.warp(uint256(commitDeadline) + 1);
            _revealAll(disputes[k]);
        }
        if (target > block.timestamp) vm.warp(target);
    }

    function _nextRevealWindow(uint256 target) internal view returns (bool found, uint256 best, uint64 earliest) {
        for (uint256 k; k < disputes.length; ++k) {
            GDispute storage d = disputes[k];
            if (d.phase != 2 || d.revealsDone) continue;
            uint64 commitDeadline = court.getDispute(d.id).commitDeadline;
            if (target <= commitDeadline || (found && commitDeadline >= earliest)) continue;
            (found, best, earliest) = (true, k, commitDeadline);
        }
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }

    function _expect(bool ok, bytes memory ret, bytes4 want, string memory what) internal returns (bool) {
        if (want == bytes4(0)) {
            if (!ok) _violate(string.concat(what, ": refused although it should go through"), uint32(bytes4(ret)), 0);
            else _count(what);
            return ok;
        }
        if (ok) _violate(string.concat(what, ": went through although it should revert"), uint32(want), 0);
        else if (ret.length < 4 || bytes4(ret) != want) {
            _violate(string.concat(what, ": reverted for another reason than predicted"), uint32(bytes4(ret)), uint32(want));
        }
        _count(string.concat(what, " refused"));
        return false;
    }

    function _violate(string memory what, uint256 a, uint256 b) internal {
        if (violations.length < 20) violations.push(Violation(what, a, b));
    }

    function _count(string memory what) internal {
        counts[keccak256(bytes(what))] += 1;
    }

    // ------------------------------------------------------------------ views for the invariants

    /// @notice Every account that can hold credit, earnings, a bond or a court payout.
    function accounts() public view returns (address[] memory all) {
        all = new address[](NR + NC + 3);
        for (uint256 i; i < NR; ++i) {
            all[i] = rel[i];
        }
        for (uint256 i; i < NC; ++i) {
            all[NR + i] = callers[i];
        }
        (all[NR + NC], all[NR + NC + 1], all[NR + NC + 2]) = (stranger, treasury, author);
    }

    function violationCount() external view returns (uint256) {
        return violations.length;
    }

    function violation(uint256 i) external view returns (string memory, uint256, uint256) {
        return (violations[i].what, violations[i].a, violations[i].b);
    }

    function countOf(string calldata what) external view returns (uint256) {
        return counts[keccak256(bytes(what))];
    }

    function disputeCount() external view returns (uint256) {
        return disputes.length;
    }

    function disputeAt(uint256 k) external view returns (uint256 id, uint8 phase, uint8 endings) {
        return (disputes[k].id, disputes[k].phase, disputes[k].endings);
    }

    function holdsOf(uint256 i) external view returns (uint256) {
        return gHolds[i];
    }

    function weightOf(uint256 i) external view returns (uint256) {
        return gWeight[i];
    }

    /// @notice Draws and resolves every open dispute (jurors vote by character), so that a run
    /// can show every dispute ends.
    function finishAll() external {
        for (uint256 k; k < disputes.length; ++k) {
            if (disputes[k].phase == 1) {
                uint256 drawBlock = court.getDispute(disputes[k].id).drawBlock;
                if (block.number < drawBlock) vm.roll(drawBlock);
                this.draw(k, uint256(keccak256(abi.encode(k))), 1);
            }
        }
        for (uint256 k; k < disputes.length; ++k) {
            if (disputes[k].phase != 2) continue;
            _warpTo(uint256(court.getDispute(disputes[k].id).revealDeadline) + 1);
            _resolveNow(k);
        }
    }
}
