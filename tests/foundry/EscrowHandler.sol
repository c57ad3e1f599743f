// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Vm} from "./Vm.sol";
import {HubModel} from "./HubModel.sol";
import {ModelRegistry} from "../../contracts/ModelRegistry.sol";
import {RelayerRegistry} from "../../contracts/RelayerRegistry.sol";
import {InferenceEscrow} from "../../contracts/InferenceEscrow.sol";
import {IInferenceEscrow} from "../../contracts/interfaces/IInferenceEscrow.sol";
import {TestWallet} from "../../contracts/testing/TestWallet.sol";

/// @title The actor forge's invariant fuzzer drives
/// @notice Each action is an adversary's or an honest party's move, with the boundaries the
/// Hypothesis state machine explores: times exactly at each deadline and delay (and one second
/// either side, `warp`), every state an actor can be in (no credit, credit at the 2**160 - 1 cap,
/// reservations being released, signer keys being replaced, relayers unbonding or under a
/// min-bond rise, models under a price notice or a payee change), and extreme arguments (0, 1,
/// 2**64 - 1 calls, 2**160 - 1 amounts, 2**128 - 1 prices, one past each cap).
///
/// An action predicts its outcome from the reference model (HubModel), performs it on the
/// contracts (as the wallet through TestWallet.execute when the actor is the wallet), records
/// a violation if the outcome differs (success or the exact revert selector; each batch item's
/// event, reason and amount), then applies the prediction to the model. Actions never revert:
/// every call the contracts may refuse is made with a low-level call.
///
/// Adversarial moves: callers settling their own receipts naming another relayer, relayers
/// settling receipts naming others, strangers settling; rejecting open requests or requests
/// designated to someone else; attesting as a non-designated, inactive or unbonded relayer;
/// the attacker (caller, relayer, author and payee at once) self-dealing through its own model;
/// the wallet's owner key signing receipts the wallet never registered; owners changing fees,
/// the minimum bond, payees and prices while calls are paid for but unsettled.
///
/// Besides the model, rules checked independently of it:
/// - a reservation (caller, relayer) decreases only in a settlement submitted by that relayer
///   or a release by that caller at or after its readyAt, and grows only by its caller's reserve;
/// - an item naming another relayer than its submitter never settles;
/// - honest relayers (slots 0, 1) follow the relayer policy (serve up to reserved - releasing -
///   unsettled, at the channel's price, from keys not being replaced); a receipt they accepted
///   and submit within withdrawalDelay of accepting it must settle (`honestLosses`).
contract EscrowHandler is HubModel {
    bytes32 internal constant FULFILLED_TOPIC = keccak256("InferenceFulfilled(uint256,address,bytes32)");
    bytes32 internal constant REJECTED_TOPIC = keccak256("InferenceRejected(uint256,address,uint8)");
    bytes32 internal constant REFUNDED_TOPIC = keccak256("InferenceRefunded(uint256)");
    bytes32 internal constant SKIPPED_TOPIC = keccak256("InferenceSkipped(uint256,uint8)");
    bytes32 internal constant RECEIPT_SETTLED_TOPIC =
        keccak256("ReceiptSettled(address,address,uint256,uint256,uint256,uint256)");
    bytes32 internal constant RECEIPT_SKIPPED_TOPIC = keccak256("ReceiptSkipped(address,address,uint256,uint256,uint8)");

    bytes4 internal constant OK = bytes4(0);
    bytes4 internal constant NOT_OWNER = bytes4(keccak256("OwnableUnauthorizedAccount(address)"));
    bytes4 internal constant ENFORCED_PAUSE = bytes4(keccak256("EnforcedPause()"));
    bytes4 internal constant EXPECTED_PAUSE = bytes4(keccak256("ExpectedPause()"));

    // IInferenceEscrow.ReceiptSkipReason
    uint8 internal constant R_NOT_NEWER = 1;
    uint8 internal constant R_EXPIRED = 2;
    uint8 internal constant R_BAD_SIG = 3;
    uint8 internal constant R_NOT_ACTIVE = 4;
    uint8 internal constant R_UNKNOWN_MODEL = 5;
    uint8 internal constant R_UNDERPRICED = 6;
    uint8 internal constant R_NO_CREDIT = 7;
    uint8 internal constant R_NOT_SUBMITTER = 8;

    /// @notice How often each action and outcome happened (keccak of its name), to tell that
    /// the fuzzer reaches them.
    mapping(bytes32 => uint256) public calls;
    uint256 public receiptsSettled;
    uint256 public requestsSettled;
    uint256 public foreignSubmissions; // items submitted by someone else than the relayer they name
    uint256 public acceptedSettled;
    /// @notice Receipts an honest relayer accepted by its policy that did not settle in time.
    uint256 public honestLosses;
    /// @notice Whether such a loss is also a per-call violation: on by default; the environment
    /// variable HONEST_RELAYER_CHECK=false turns it off, to run the other checks while a known
    /// loss is being fixed (`honestLosses` still counts; invariant_hub fails on it unless off).
    bool public honestCheck;

    /// @dev A signed receipt a relayer holds, to be settled later (deadlines, notices, delays).
    struct Held {
        IInferenceEscrow.Receipt r;
        bytes sig;
        address signer;
        bool accepted; // by an honest relayer's policy when it was signed
        uint64 settleBy; // the latest time the policy settles it by
        uint256 epoch; // of its (caller, relayer) pair when accepted
    }

    Held[] internal held;
    /// @dev Per channel: the totals of the newest receipt an honest relayer accepted.
    mapping(bytes32 => uint256) internal acceptedCalls;
    mapping(bytes32 => uint256) internal acceptedAmount;
    /// @dev Per (caller, relayer slot): bumped when the relayer settles a receipt of the pair
    /// that its policy did not accept (or an older one than its newest accepted), which may
    /// spend what backed the accepted ones; their check then no longer applies.
    uint256[NR][NC] internal pairEpoch;
    /// @dev Per channel: the escrow's channelPrice last read, and the channel's settlement count
    /// then; until it settles again, channelPrice must never rise (checked on the contract).
    mapping(bytes32 => uint256) internal seenPrice;
    mapping(bytes32 => uint256) internal seenAtSettlement;

    // Reservation moves allowed in the current action (bit c * NR + r).
    uint256 internal mayShrink;
    uint256 internal mayGrow;

    /// @dev One item of a batch of receipts.
    struct Item {
        IInferenceEscrow.Receipt r;
        bytes sig;
        address signer;
        bool accepted;
        uint64 settleBy;
        uint256 epoch;
        uint8 c;
        uint8 rs; // relayer slot named
    }

    constructor() {
        honestCheck = vm.envOr("HONEST_RELAYER_CHECK", true);
        for (uint256 i; i < 2; ++i) {
            _register(i, MIN_BOND);
        }
        _registerModel(authors[0], 1e18 + 7);
        token.approve(address(escrow), type(uint256).max);
    }

    // ------------------------------------------------------------------ the reservation rule

    modifier watched() {
        uint256[NR][NC] memory before = _reservedNow();
        ++step;
        mayShrink = 0;
        mayGrow = 0;
        _;
        uint256[NR][NC] memory afterwards = _reservedNow();
        for (uint256 c; c < NC; ++c) {
            for (uint256 r; r < NR; ++r) {
                uint256 bit = 1 << (c * NR + r);
                if (afterwards[c][r] < before[c][r] && mayShrink & bit == 0) {
                    _violate("a reservation shrank without a settlement by its relayer or a ready release", c * NR + r, before[c][r] - afterwards[c][r]);
                }
                if (afterwards[c][r] > before[c][r] && mayGrow & bit == 0) {
                    _violate("a reservation grew without a reserve by its caller or a paid reserveFor", c * NR + r, afterwards[c][r] - before[c][r]);
                }
            }
        }
    }

    function _reservedNow() internal view returns (uint256[NR][NC] memory out) {
        for (uint256 c; c < NC; ++c) {
            for (uint256 r; r < NR; ++r) {
                (out[c][r],,) = escrow.reservation(callers[c], rel[r]);
            }
        }
    }

    // ------------------------------------------------------------------ calling as an actor

    /// @dev Calls `target` as `actor`; the wallet acts through TestWallet.execute (its owner
    /// signs the transaction), whose CallFailed wrapper is unwrapped to the inner revert.
    function _exec(address actor, address target, bytes memory data) internal returns (bool ok, bytes memory ret) {
        if (actor == address(wallet)) {
            vm.prank(walletOwner);
            (ok, ret) = address(wallet).call(abi.encodeCall(TestWallet.execute, (target, data)));
            if (ok) {
                ret = abi.decode(ret, (bytes));
            } else if (ret.length >= 4 && bytes4(ret) == TestWallet.TestWallet_CallFailed.selector) {
                ret = abi.decode(_tail(ret), (bytes));
            }
        } else {
            vm.prank(actor);
            (ok, ret) = target.call(data);
        }
    }

    function _tail(bytes memory b) internal pure returns (bytes memory t) {
        t = new bytes(b.length - 4);
        for (uint256 i; i < t.length; ++i) {
            t[i] = b[i + 4];
        }
    }

    /// @dev Compares an outcome with the prediction (`want` 0: success, else the revert
    /// selector); returns whether the call went through.
    function _expect(bool ok, bytes memory ret, bytes4 want, string memory what) internal returns (bool) {
        if (want == OK) {
            if (!ok) {
                _violate(string.concat(what, ": refused although it should go through"), uint32(bytes4(ret)), 0);
                _count(string.concat(what, " refused unexpectedly"));
            } else {
                _count(what);
            }
            return ok;
        }
        if (ok) {
            _violate(string.concat(what, ": went through although it should revert"), uint32(want), 0);
        } else if (ret.length < 4 || bytes4(ret) != want) {
            _violate(string.concat(what, ": reverted for another reason than predicted"), uint32(bytes4(ret)), uint32(want));
        }
        _count(string.concat(what, " refused"));
        return ok;
    }

    function _count(string memory what) internal {
        calls[keccak256(bytes(what))] += 1;
    }

    function _mintTo(address account, uint256 amount) internal {
        if (amount != 0) token.mint(account, amount);
    }

    // ------------------------------------------------------------------ argument pickers

    /// @dev 0, 1, `base`, base +- 1, 2**160 - 1, 2**160, small or any below 2**160.
    function _amount(uint256 seed, uint256 base) internal pure returns (uint256) {
        uint256 k = seed % 10;
        if (k == 0) return 0;
        if (k == 1) return 1;
        if (k == 2) return base;
        if (k == 3) return base + 1;
        if (k == 4) return base == 0 ? 0 : base - 1;
        if (k == 5) return MAX_CREDIT;
        if (k == 6) return MAX_CREDIT + 1;
        if (k == 9) return (seed >> 8) % (MAX_CREDIT + 1);
        return 1 + (seed >> 8) % 1e24;
    }

    /// @dev 0, 1, 2**128 - 1 (or one less), one past the cap, small or any.
    function _priceOf(uint256 seed) internal pure returns (uint256) {
        uint256 k = seed % 8;
        if (k == 0) return 0;
        if (k == 1) return 1;
        if (k == 2) return MAX_PRICE - (seed >> 8) % 2;
        if (k == 3) return MAX_PRICE + 1;
        if (k == 4) return (seed >> 8) % (MAX_PRICE + 1) >> ((seed >> 200) % 128);
        return (seed >> 8) % 10_000;
    }

    function _modelPick(uint256 seed) internal view returns (uint256) {
        if (seed % 16 == 15) return gModels.length + 1; // unknown
        return 1 + (seed >> 4) % gModels.length;
    }

    function _accountPick(uint256 seed) internal view returns (address) {
        address[] memory all = accounts();
        return all[seed % all.length];
    }

    // ------------------------------------------------------------------ credit

    function deposit(uint256 callerSeed, uint256 amountSeed) external watched {
        uint256 c = callerSeed % NC;
        address account = callers[c];
        bool third = (callerSeed >> 4) % 2 == 1 || c == 3; // someone else pays (depositFor)
        if ((callerSeed >> 8) % 32 == 0) {
            account = address(0);
            third = true;
        }
        uint256 credit = gCredit[account];
        uint256 amount = _amount(amountSeed, MAX_CREDIT - credit);
        bytes4 want = amount == 0
            ? IInferenceEscrow.InferenceEscrow_ZeroAmount.selector
            : account == address(0)
                ? IInferenceEscrow.InferenceEscrow_ZeroAddress.selector
                : credit + amount > MAX_CREDIT ? IInferenceEscrow.InferenceEscrow_CreditOverflow.selector : OK;
        address payer = third ? address(this) : account;
        _mintTo(payer, amount);
        uint256 payerBefore = token.balanceOf(payer);
        bool ok;
        bytes memory ret;
        if (third) {
            (ok, ret) = address(escrow).call(abi.encodeCall(escrow.depositFor, (account, amount)));
        } else {
            vm.prank(account);
            token.approve(address(escrow), amount);
            (ok, ret) = _exec(account, address(escrow), abi.encodeCall(escrow.deposit, (amount)));
        }
        if (_expect(ok, ret, want, "deposit")) {
            gCredit[account] += amount;
            if (token.balanceOf(payer) != payerBefore - amount) _violate("a deposit took another amount from its payer", amount, 0);
        }
    }

    /// @dev Tops up `c`'s free credit to `amount` (if that fits under the cap).
    function _fundCredit(uint256 c, uint256 amount) internal returns (bool) {
        address account = callers[c];
        uint256 credit = gCredit[account];
        if (credit >= amount) return true;
        uint256 need = amount - credit;
        if (amount > MAX_CREDIT) return false;
        _mintTo(address(this), need);
        (bool ok, bytes memory ret) = address(escrow).call(abi.encodeCall(escrow.depositFor, (account, need)));
        if (_expect(ok, ret, OK, "deposit (funding)")) gCredit[account] += need;
        return ok;
    }

    /// @dev Tops up reservation (c, r) to `amount`, from free credit topped up first.
    function _fundReservation(uint256 c, uint256 r, uint256 amount) internal {
        GReservation storage g = gRes[c][r];
        if (g.amount >= amount) return;
        uint256 need = amount - g.amount;
        if (!_fundCredit(c, need)) return;
        _reserve(c, r, need);
    }

    function withdraw(uint256 callerSeed, uint256 amountSeed) external watched {
        uint256 c = callerSeed % NC;
        address account = callers[c];
        uint256 credit = gCredit[account];
        uint256 amount = _amount(amountSeed, credit);
        bytes4 want = amount == 0
            ? IInferenceEscrow.InferenceEscrow_ZeroAmount.selector
            : amount > credit ? IInferenceEscrow.InferenceEscrow_InsufficientCredit.selector : OK;
        uint256 before = token.balanceOf(account);
        (bool ok, bytes memory ret) = _exec(account, address(escrow), abi.encodeCall(escrow.withdraw, (amount)));
        if (_expect(ok, ret, want, "withdraw")) {
            gCredit[account] -= amount;
            if (token.balanceOf(account) != before + amount) _violate("withdraw paid another amount", amount, 0);
        }
    }

    function withdrawEarnings(uint256 accountSeed) external watched {
        address account = _accountPick(accountSeed);
        uint256 earned = gEarn[account];
        bytes4 want = earned == 0 ? IInferenceEscrow.InferenceEscrow_NothingToWithdraw.selector : OK;
        uint256 before = token.balanceOf(account);
        (bool ok, bytes memory ret) = _exec(account, address(escrow), abi.encodeCall(escrow.withdrawEarnings, ()));
        if (_expect(ok, ret, want, "withdrawEarnings")) {
            gEarn[account] = 0;
            if (token.balanceOf(account) != before + earned) _violate("withdrawEarnings paid another amount", earned, 0);
        }
    }

    // ------------------------------------------------------------------ reservations and signer keys

    function reserve(uint256 callerSeed, uint256 relayerSeed, uint256 amountSeed) external watched {
        uint256 c = callerSeed % NC;
        uint256 r = relayerSeed % NR;
        if ((relayerSeed >> 4) % 32 == 0) {
            // the zero relayer
            (bool ok0, bytes memory ret0) =
                _exec(callers[c], address(escrow), abi.encodeCall(escrow.reserve, (address(0), 1 + amountSeed % 10)));
            _expect(
                ok0,
                ret0,
                IInferenceEscrow.InferenceEscrow_ZeroAddress.selector,
                "reserve for the zero address"
            );
            return;
        }
        uint256 amount = _amount(amountSeed, gCredit[callers[c]]);
        if ((amountSeed >> 4) % 8 == 0) {
            // up to the reservation cap when credit allows (2**160 - 1 reserved)
            amount = MAX_CREDIT - gRes[c][r].amount + (amountSeed >> 7) % 2;
            _fundCredit(c, amount);
        }
        _reserve(c, r, amount);
    }

    function _reserve(uint256 c, uint256 r, uint256 amount) internal {
        address caller = callers[c];
        GReservation storage g = gRes[c][r];
        uint256 credit = gCredit[caller];
        bytes4 want = amount == 0
            ? IInferenceEscrow.InferenceEscrow_ZeroAmount.selector
            : amount > credit
                ? IInferenceEscrow.InferenceEscrow_InsufficientCredit.selector
                : g.amount + amount > MAX_CREDIT ? IInferenceEscrow.InferenceEscrow_CreditOverflow.selector : OK;
        (bool ok, bytes memory ret) = _exec(caller, address(escrow), abi.encodeCall(escrow.reserve, (rel[r], amount)));
        if (_expect(ok, ret, want, "reserve")) {
            gCredit[caller] -= amount;
            g.amount += amount;
            if (g.openedAt == 0) g.openedAt = _now();
            mayGrow |= 1 << (c * NR + r);
        }
    }

    /// @notice Someone (the handler as a third party, the attacker, or the caller itself) pays
    /// `amount` into a caller's reservation for a relayer in one step.
    function reserveFor(uint256 callerSeed, uint256 relayerSeed, uint256 amountSeed) external watched {
        uint256 c = callerSeed % NC;
        uint256 r = relayerSeed % NR;
        address account = (callerSeed >> 4) % 32 == 0 ? address(0) : callers[c];
        address relayer = (relayerSeed >> 4) % 32 == 0 ? address(0) : rel[r];
        GReservation storage g = gRes[c][r];
        uint256 amount = _amount(amountSeed, MAX_CREDIT - g.amount);
        uint256 who = (callerSeed >> 8) % 3;
        address payer = who == 0 ? address(this) : who == 1 ? attacker : callers[c];
        bytes4 want = amount == 0
            ? IInferenceEscrow.InferenceEscrow_ZeroAmount.selector
            : account == address(0) || relayer == address(0)
                ? IInferenceEscrow.InferenceEscrow_ZeroAddress.selector
                : g.amount + amount > MAX_CREDIT ? IInferenceEscrow.InferenceEscrow_CreditOverflow.selector : OK;
        _mintTo(payer, amount);
        if (payer != address(this)) {
            (bool okA, bytes memory retA) =
                _exec(payer, address(token), abi.encodeCall(token.approve, (address(escrow), amount)));
            _expect(okA, retA, OK, "approve");
        }
        uint256 before = token.balanceOf(payer);
        (bool ok, bytes memory ret) =
            _exec(payer, address(escrow), abi.encodeCall(escrow.reserveFor, (account, relayer, amount)));
        if (_expect(ok, ret, want, "reserveFor")) {
            g.amount += amount;
            if (g.openedAt == 0) g.openedAt = _now();
            mayGrow |= 1 << (c * NR + r);
            if (token.balanceOf(payer) != before - amount) _violate("reserveFor took another amount from its payer", amount, 0);
        }
    }

    function announceRelease(uint256 callerSeed, uint256 relayerSeed, uint256 amountSeed) external watched {
        uint256 c = callerSeed % NC;
        uint256 r = relayerSeed % NR;
        GReservation storage g = gRes[c][r];
        uint256 amount = _amount(amountSeed, g.amount);
        bytes4 want = amount > MAX_CREDIT ? IInferenceEscrow.InferenceEscrow_CreditOverflow.selector : OK;
        (bool ok, bytes memory ret) =
            _exec(callers[c], address(escrow), abi.encodeCall(escrow.announceRelease, (rel[r], amount)));
        if (_expect(ok, ret, want, amount == 0 ? "announceRelease(0): cancel" : "announceRelease")) {
            g.releasing = amount;
            g.releaseAt = amount == 0 ? 0 : _now() + WD;
        }
    }

    /// @param when 0 now; 1, 2, 3: first to readyAt - 1, readyAt, readyAt + 1 (if ahead).
    function release(uint256 callerSeed, uint256 relayerSeed, uint256 when) external watched {
        uint256 c = callerSeed % NC;
        uint256 r = relayerSeed % NR;
        GReservation storage g = gRes[c][r];
        when %= 4;
        if (when != 0 && g.releaseAt != 0) _warpTo(uint256(g.releaseAt) + when - 2);
        address caller = callers[c];
        uint256 amount = g.releasing < g.amount ? g.releasing : g.amount;
        bytes4 want = g.releaseAt == 0
            ? IInferenceEscrow.InferenceEscrow_NothingToRelease.selector
            : block.timestamp < g.releaseAt
                ? IInferenceEscrow.InferenceEscrow_ReleaseNotReady.selector
                : gCredit[caller] + amount > MAX_CREDIT ? IInferenceEscrow.InferenceEscrow_CreditOverflow.selector : OK;
        if (want == OK || want == IInferenceEscrow.InferenceEscrow_CreditOverflow.selector) mayShrink |= 1 << (c * NR + r);
        (bool ok, bytes memory ret) = _exec(caller, address(escrow), abi.encodeCall(escrow.release, (rel[r])));
        if (_expect(ok, ret, want, "release")) {
            g.amount -= amount;
            g.releasing = 0;
            g.releaseAt = 0;
            gCredit[caller] += amount;
        }
    }

    function setReceiptSigner(uint256 callerSeed, uint256 choice) external watched {
        uint256 c = callerSeed % NC;
        address[6] memory candidates = [signerAddrs[0], signerAddrs[1], address(0), stranger, walletOwner, callers[c]];
        address signer = candidates[choice % 6];
        (bool ok, bytes memory ret) =
            _exec(callers[c], address(escrow), abi.encodeCall(escrow.setReceiptSigner, (signer)));
        if (_expect(ok, ret, OK, "setReceiptSigner")) {
            GSigner storage s = gSigner[c];
            address inForce = _signerNow(c);
            if (inForce == address(0)) {
                s.current = signer;
                s.next = address(0);
                s.nextAt = 0;
            } else {
                s.current = inForce;
                s.next = signer;
                s.nextAt = _now() + WD;
            }
        }
    }

    // ------------------------------------------------------------------ receipts

    /// @notice Signs one or two receipts that relayers hold for later (up to 12 held).
    function signReceipts(uint256 seed) external watched {
        uint256 n = 1 + seed % 2;
        for (uint256 i; i < n; ++i) {
            Item memory it = _buildItem(uint256(keccak256(abi.encode(seed, i))), true);
            _hold(it);
        }
    }

    function _hold(Item memory it) internal {
        Held memory h = Held(it.r, it.sig, it.signer, it.accepted, it.settleBy, it.epoch);
        if (held.length < 12) {
            held.push(h);
        } else {
            held[uint256(keccak256(abi.encode(it.r.calls, it.r.amount, block.timestamp))) % 12] = h;
        }
        _count(it.accepted ? "receipt accepted and held" : "receipt held");
    }

    /// @notice A batch of up to four receipts, fresh or held, valid or not, sometimes one twice;
    /// submitted by the relayer they name, or by an attacker (another relayer, the attacker,
    /// the caller of the first item, a stranger).
    function settleReceipts(uint256 seed) external watched {
        uint256 n = 1 + seed % 4;
        uint256 r0 = (seed >> 8) % NR;
        Item[] memory items = new Item[](n);
        for (uint256 i; i < n; ++i) {
            uint256 s = uint256(keccak256(abi.encode(seed, i)));
            if (held.length != 0 && s % 3 == 0) {
                Held storage h = held[(s >> 8) % held.length];
                items[i] = Item(h.r, h.sig, h.signer, h.accepted, h.settleBy, h.epoch, uint8(_callerSlot(h.r.caller)), uint8(_relSlot(h.r.relayer)));
            } else {
                Spec memory sp = _spec(s);
                if ((s >> 2) % 4 != 0) sp.rs = r0;
                items[i] = _makeItem(sp, false);
            }
        }
        if (seed % 5 == 0 && n > 1) items[n - 1] = items[0];
        uint256 mode = (seed >> 4) % 8;
        address submitter = mode < 5
            ? items[0].r.relayer
            : mode == 5 ? attacker : mode == 6 ? items[0].r.caller : rel[(items[0].rs + 1) % NR];
        _settleBatch(items, submitter, uint256(keccak256(abi.encode(seed, "lengths"))) % 32 == 0);
    }

    function _settleBatch(Item[] memory items, address submitter, bool mismatchedLengths) internal {
        uint256 n = items.length;
        IInferenceEscrow.Receipt[] memory receipts = new IInferenceEscrow.Receipt[](n);
        bytes[] memory sigs = new bytes[](mismatchedLengths ? n + 1 : n);
        for (uint256 i; i < n; ++i) {
            receipts[i] = items[i].r;
            sigs[i] = items[i].sig;
        }
        if (mismatchedLengths) {
            (bool ok0, bytes memory ret0) =
                _exec(submitter, address(escrow), abi.encodeCall(escrow.settleReceipts, (receipts, sigs)));
            _expect(ok0, ret0, IInferenceEscrow.InferenceEscrow_LengthMismatch.selector, "settleReceipts, mismatched lengths");
            return;
        }
        // Predict every item on the model, in order, applying each as it settles.
        bool active = _active(submitter);
        uint8[] memory reasons = new uint8[](n);
        uint256[] memory paid = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            (reasons[i], paid[i]) = _predictReceipt(items[i], submitter, active);
            if (items[i].accepted && submitter == items[i].r.relayer) _checkAccepted(items[i], reasons[i]);
            if (reasons[i] == 0) {
                _spoilIfOffPolicy(items[i]);
                _applyReceipt(items[i], paid[i]);
            }
            if (items[i].r.relayer != submitter) foreignSubmissions += 1;
        }
        uint256 submitterSlot = _relSlot(submitter);
        if (submitterSlot < NR) {
            for (uint256 c; c < NC; ++c) {
                mayShrink |= 1 << (c * NR + submitterSlot);
            }
        }
        vm.recordLogs();
        (bool ok, bytes memory ret) =
            _exec(submitter, address(escrow), abi.encodeCall(escrow.settleReceipts, (receipts, sigs)));
        if (!_expect(ok, ret, OK, "settleReceipts")) return;
        _checkReceiptEvents(items, submitter, reasons, paid);
    }

    function _checkReceiptEvents(Item[] memory items, address submitter, uint8[] memory reasons, uint256[] memory paid)
        internal
    {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 item;
        for (uint256 l; l < logs.length; ++l) {
            if (logs[l].emitter != address(escrow)) continue;
            bytes32 topic = logs[l].topics[0];
            if (topic != RECEIPT_SETTLED_TOPIC && topic != RECEIPT_SKIPPED_TOPIC) continue;
            if (item >= items.length) {
                _violate("more receipt events than items", item, 0);
                return;
            }
            IInferenceEscrow.Receipt memory r = items[item].r;
            if (logs[l].topics[1] != bytes32(uint256(uint160(r.caller))) || logs[l].topics[3] != bytes32(r.modelId)) {
                _violate("a receipt event names another item than the one in its place", item, 0);
            }
            if (topic == RECEIPT_SETTLED_TOPIC) {
                (uint256 totalCalls, uint256 totalAmount, uint256 paidNow) = abi.decode(logs[l].data, (uint256, uint256, uint256));
                if (r.relayer != submitter) _violate("a receipt naming another relayer than its submitter settled", item, paidNow);
                if (logs[l].topics[2] != bytes32(uint256(uint160(submitter)))) _violate("ReceiptSettled names another relayer than the submitter", item, 0);
                if (reasons[item] != 0) _violate("a receipt settled that the model skips, reason", reasons[item], paidNow);
                else if (paidNow != paid[item]) _violate("a receipt paid another amount than its channel's increase", paidNow, paid[item]);
                if (totalCalls != r.calls || totalAmount != r.amount) _violate("ReceiptSettled carries other totals than its receipt", totalCalls, r.calls);
                _count("receipt settled");
            } else {
                (uint256 totalCalls, uint8 reason) = abi.decode(logs[l].data, (uint256, uint8));
                if (reason != reasons[item]) _violate("a receipt was skipped for another reason than the model's", reason, reasons[item]);
                if (totalCalls != r.calls || logs[l].topics[2] != bytes32(uint256(uint160(r.relayer)))) {
                    _violate("ReceiptSkipped carries another item's fields", item, 0);
                }
                _count(string.concat("receipt skipped ", _digit(reason)));
            }
            ++item;
        }
        if (item != items.length) _violate("a receipt item ended in no event", item, items.length);
    }

    /// @dev Why the escrow must skip item `it` submitted by `submitter` (0: it settles) and what it pays.
    function _predictReceipt(Item memory it, address submitter, bool active) internal view returns (uint8, uint256) {
        IInferenceEscrow.Receipt memory r = it.r;
        if (r.relayer != submitter) return (R_NOT_SUBMITTER, 0);
        if (!active) return (R_NOT_ACTIVE, 0);
        if (block.timestamp > r.deadline) return (R_EXPIRED, 0);
        if (r.calls > MAX_CALLS || r.amount > MAX_CREDIT) return (R_NOT_NEWER, 0);
        uint256 c = _callerSlot(r.caller);
        uint256 rs = _relSlot(r.relayer);
        GChannel storage ch = gCh[_chKey(c, rs, r.modelId)];
        if (r.calls <= ch.calls || r.amount < ch.amount) return (R_NOT_NEWER, 0);
        address delegated = _signerNow(c);
        bool signed = it.signer == r.caller || (delegated != address(0) && it.signer == delegated);
        if (!signed) return (R_BAD_SIG, 0);
        if (!_exists(r.modelId)) return (R_UNKNOWN_MODEL, 0);
        uint256 increase = r.amount - ch.amount;
        if (increase < (r.calls - ch.calls) * _perCall(c, rs, ch.settledAt, r.modelId)) return (R_UNDERPRICED, 0);
        if (increase > gRes[c][rs].amount) return (R_NO_CREDIT, 0);
        return (0, increase);
    }

    function _applyReceipt(Item memory it, uint256 paid) internal {
        IInferenceEscrow.Receipt memory r = it.r;
        uint256 c = _callerSlot(r.caller);
        uint256 rs = _relSlot(r.relayer);
        GChannel storage ch = gCh[_chKey(c, rs, r.modelId)];
        gStatCalls[r.modelId] += r.calls - ch.calls;
        gStatRevenue[r.modelId] += paid;
        ch.calls = r.calls;
        ch.amount = r.amount;
        ch.settledAt = _now();
        ch.paidSum += paid;
        ch.settlements += 1;
        gRes[c][rs].amount -= paid;
        receiptsSettled += 1;
        _book(r.relayer, r.modelId, paid);
    }

    /// @dev An honest relayer's accepted receipt, submitted by it: it must settle, unless a newer
    /// receipt of the channel settled first or the relayer is no longer active. Past
    /// withdrawalDelay after accepting it, the relayer has not followed its own policy.
    function _checkAccepted(Item memory it, uint8 reason) internal {
        if (block.timestamp > it.settleBy || it.epoch != pairEpoch[it.c][it.rs]) return;
        if (reason == 0) {
            acceptedSettled += 1;
            return;
        }
        if (reason == R_NOT_NEWER || reason == R_NOT_ACTIVE) return;
        honestLosses += 1;
        _count(string.concat("honest relayer lost, reason ", _digit(reason)));
        if (honestCheck) _violate(
            string.concat("an honest relayer's accepted receipt did not settle in time, reason ", _digit(reason)),
            it.r.modelId,
            it.r.amount
        );
    }

    /// @dev A settlement by an honest relayer of a receipt its policy did not accept, or of an
    /// older one than the newest it accepted on the channel, is off its policy.
    function _spoilIfOffPolicy(Item memory it) internal {
        if (it.rs >= 2) return;
        bytes32 key = _chKey(it.c, it.rs, it.r.modelId);
        bool current = it.accepted && it.epoch == pairEpoch[it.c][it.rs] && it.r.calls >= acceptedCalls[key];
        if (!current && acceptedAmount[key] > gCh[key].amount) pairEpoch[it.c][it.rs] += 1;
        if (!current) {
            // Any accepted receipt of another model of the pair may have lost its backing.
            for (uint256 m = 1; m <= gModels.length + 1; ++m) {
                bytes32 other = _chKey(it.c, it.rs, m);
                if (acceptedAmount[other] > gCh[other].amount) {
                    pairEpoch[it.c][it.rs] += 1;
                    break;
                }
            }
        }
    }

    /// @dev Model-free: once its caller reserved for its relayer, a channel's channelPrice never
    /// rises between two of its settlements (so a receipt accepted at the price it shows always
    /// settles, as far as the price goes).
    function _checkPriceFalls(bytes32 key, uint256 c, uint256 rs, uint256 modelId, uint256 settlements) internal {
        uint256 price = escrow.channelPrice(callers[c], rel[rs], modelId);
        // An unknown model, or a channel with no reservation yet (its first reserve sets `since`).
        if (price == 0 || gRes[c][rs].openedAt == 0) return;
        uint256 last = seenPrice[key];
        if (last != 0 && seenAtSettlement[key] == settlements && price > last) {
            _violate("channelPrice rose on a channel that did not settle", price, last);
        }
        seenPrice[key] = price;
        seenAtSettlement[key] = settlements;
    }

    /// @dev A receipt of a random channel and kind (seed bits 4-7 pick the relayer slot).
    /// Kinds: 0-5 the channel's next totals at its price (1-3 calls, sometimes a little over;
    /// funded three times in four); 6 a replay; 7 one unit short; 8 signed by a foreign key
    /// (for the wallet: its owner's key); 9 expired; 10 due exactly now; 11 up to 2**64 - 1
    /// calls; 12 one call past it; 13 amount 2**160 - 1; 14 one past it; 15 a smaller amount.
    struct Spec {
        uint256 c;
        uint256 rs;
        uint256 modelId;
        uint256 kind;
        uint256 who; // 0, 1: signer key 0 or 1; else the caller's key (wallet: 7 its owner's key)
        bool fund;
        bool long; // a deadline at least withdrawalDelay away
        uint256 s; // more randomness
    }

    function _spec(uint256 s) internal view returns (Spec memory sp) {
        sp.c = s % NC;
        sp.rs = (s >> 4) % NR;
        sp.modelId = _modelPick(s >> 8);
        sp.kind = (s >> 16) % 16;
        sp.who = (s >> 52) % 8;
        sp.fund = (s >> 48) % 4 != 0;
        sp.long = (s >> 56) % 2 == 0;
        sp.s = s >> 60;
    }

    function _buildItem(uint256 s, bool forHeld) internal returns (Item memory) {
        return _makeItem(_spec(s), forHeld);
    }

    function _makeItem(Spec memory sp, bool forHeld) internal returns (Item memory it) {
        uint256 c = sp.c;
        uint256 rs = sp.rs;
        uint256 modelId = sp.modelId;
        uint256 kind = sp.kind;
        uint256 s = sp.s;
        bytes32 key = _chKey(c, rs, modelId);
        _noteChannel(c, rs, modelId);
        GChannel storage ch = gCh[key];
        // A relayer builds on the newest receipt it accepted.
        uint256 baseCalls = ch.calls;
        uint256 baseAmount = ch.amount;
        if (acceptedCalls[key] > baseCalls && acceptedAmount[key] >= baseAmount) {
            baseCalls = acceptedCalls[key];
            baseAmount = acceptedAmount[key];
        }
        uint256 perCall = _exists(modelId) ? _perCall(c, rs, ch.settledAt, modelId) : 1;
        _checkPriceFalls(key, c, rs, modelId, ch.settlements);
        uint256 newCalls = 1 + s % 3;
        uint256 pay = newCalls * perCall + ((s >> 4) % 4 == 0 ? (s >> 8) % 1000 : 0);
        uint256 totalCalls = baseCalls + newCalls;
        uint256 totalAmount = baseAmount + pay;
        uint64 deadline = _now() + 1 + uint64((s >> 20) % (3 * WD)) + (sp.long ? WD : 0);
        if (kind == 6) {
            totalCalls = ch.calls;
            totalAmount = ch.amount;
        } else if (kind == 7) {
            totalAmount = baseAmount + newCalls * perCall - 1;
        } else if (kind == 9) {
            deadline = _now() - 1;
        } else if (kind == 10) {
            deadline = _now();
        } else if (kind == 11) {
            totalCalls = MAX_CALLS;
            totalAmount = baseAmount + (MAX_CALLS - baseCalls) * perCall;
        } else if (kind == 12) {
            totalCalls = MAX_CALLS + 1;
        } else if (kind == 13) {
            totalAmount = MAX_CREDIT;
        } else if (kind == 14) {
            totalAmount = MAX_CREDIT + 1;
        } else if (kind == 15 && baseAmount != 0) {
            totalAmount = baseAmount - 1;
        }
        // Fund the reservation for what the item pays, three times in four.
        if ((kind < 6 || kind == 10 || kind == 11 || kind == 13) && sp.fund && totalAmount <= MAX_CREDIT && totalAmount >= ch.amount) {
            _fundReservation(c, rs, totalAmount - ch.amount + _unsettledAccepted(c, rs));
        }
        it.r = IInferenceEscrow.Receipt(callers[c], rel[rs], modelId, totalCalls, totalAmount, deadline);
        // Who signs: the caller's own key, or a registered signer key (the wallet has only those).
        uint256 who = sp.who;
        uint256 key_;
        if (kind == 8) {
            key_ = c == 3 ? walletOwnerKey : strangerKey;
        } else if (c == 3 || who < 2) {
            key_ = who % 2 == 0 ? signerKeys[0] : signerKeys[1];
            if (c == 3 && who == 7) key_ = walletOwnerKey;
        } else {
            key_ = callerKeys[c];
        }
        it.signer = vm.addr(key_);
        it.sig = _signDigest(key_, _receiptDigest(it.r));
        // A channel's price only falls until it settles (HubModel._perCall), so the policy needs
        // no earlier settlement than its own: within withdrawalDelay, before the deadline.
        it.settleBy = _now() + WD < deadline ? _now() + WD : deadline;
        it.epoch = pairEpoch[c][rs];
        it.c = uint8(c);
        it.rs = uint8(rs);
        if (forHeld && kind < 6 && rs < 2) {
            it.accepted = _accepts(c, rs, modelId, totalCalls - baseCalls, totalAmount - baseAmount, it.signer, deadline, perCall);
            if (it.accepted) {
                acceptedCalls[key] = totalCalls;
                acceptedAmount[key] = totalAmount;
            }
        }
    }

    /// @dev The relayer policy (design.md): a relayer serves a caller only up to reserved -
    /// releasing - what its channels of that caller have unsettled, at the channel's price,
    /// from a key not being replaced, with time to settle.
    function _accepts(
        uint256 c,
        uint256 rs,
        uint256 modelId,
        uint256 newCalls,
        uint256 increase,
        address signer,
        uint64 deadline,
        uint256 perCall
    ) internal view returns (bool) {
        if (!_active(rel[rs]) || !_exists(modelId) || deadline < _now() + WD) return false;
        GSigner storage s = gSigner[c];
        bool keyHolds = signer == callers[c]
            || (signer != address(0) && signer == _signerNow(c) && (s.nextAt == 0 || block.timestamp >= s.nextAt));
        if (!keyHolds) return false;
        // Also what the escrow's view says the channel price is.
        if (escrow.channelPrice(callers[c], rel[rs], modelId) != perCall) return false;
        if (increase < newCalls * perCall) return false;
        GReservation storage g = gRes[c][rs];
        uint256 releasing = g.releaseAt != 0 ? (g.releasing < g.amount ? g.releasing : g.amount) : 0;
        uint256 unsettled = _unsettledAccepted(c, rs);
        return g.amount >= releasing + unsettled + increase;
    }

    function _unsettledAccepted(uint256 c, uint256 rs) internal view returns (uint256 total) {
        for (uint256 m = 1; m <= gModels.length + 1; ++m) {
            bytes32 key = _chKey(c, rs, m);
            uint256 settled = gCh[key].amount;
            if (acceptedAmount[key] > settled) total += acceptedAmount[key] - settled;
        }
    }

    /// @notice The scenario of attack 5: an honest relayer accepts receipts at the channel's price,
    /// the model's owner changes the price, time moves up to the boundaries of the notice, and
    /// the relayer settles.
    function priceChangeUnderReceipts(uint256 seed) external watched {
        uint256 rs = seed % 2;
        if (!_active(rel[rs])) return;
        uint256 c = (seed >> 2) % NC;
        uint256 modelId = 1 + (seed >> 4) % gModels.length;
        // A receipt the relayer accepts: signed by the caller's key (a signer key for the wallet).
        if (c == 3 && _signerNow(3) == address(0)) {
            (bool okS, bytes memory retS) =
                _exec(callers[3], address(escrow), abi.encodeCall(escrow.setReceiptSigner, (signerAddrs[0])));
            if (_expect(okS, retS, OK, "setReceiptSigner")) gSigner[3] = GSigner(signerAddrs[0], address(0), 0);
        }
        Spec memory sp = _spec(uint256(keccak256(abi.encode(seed))));
        sp.c = c;
        sp.rs = rs;
        sp.modelId = modelId;
        sp.kind = (seed >> 8) % 6;
        sp.fund = true;
        sp.long = true;
        sp.who = c == 3 ? (_signerNow(3) == signerAddrs[0] ? 0 : 1) : 2;
        Item memory it = _makeItem(sp, true);
        _hold(it);
        // The owner changes the price: a rise (most often) or a cut.
        uint256 how = (seed >> 100) % 4;
        GModel storage m = _model(modelId);
        uint256 newPrice = how == 0 ? m.price / 2 : m.price >= MAX_PRICE / 2 ? MAX_PRICE : m.price * 2 + 1 + how;
        _setPrice(modelId, newPrice, m.owner);
        // Time moves: not at all, a little, or to the notice's end (-1, 0, +1).
        uint256 when = (seed >> 110) % 5;
        if (when == 1) _warpTo(block.timestamp + 1 + (seed >> 120) % 60);
        else if (when >= 2 && m.noticeEnds != 0) _warpTo(uint256(m.noticeEnds) + when - 3);
        Item[] memory items = new Item[](1);
        items[0] = it;
        _settleBatch(items, rel[rs], false);
    }

    // ------------------------------------------------------------------ requests

    /// @param how bits 0-1 version (0 latest, latest, latest + 1, 1); bits 2-4 maxPrice
    /// (price, + 1, - 1, max, 0); bits 5-7 designated relayer (none x3, slot 0, 1, 2, stranger).
    function request(uint256 callerSeed, uint256 modelSeed, uint256 how) external watched {
        uint256 c = callerSeed % NC;
        address caller = callers[c];
        uint256 modelId = _modelPick(modelSeed);
        bool known = _exists(modelId);
        uint256 price = known ? _model(modelId).price : 0;
        uint32 latest = known ? _model(modelId).latest : 0;
        uint32 version = [uint32(0), latest, latest + 1, 1][how % 4];
        uint256 mp = (how >> 2) % 5;
        uint256 maxPrice = mp == 0 ? price : mp == 1 ? price + 1 : mp == 2 ? (price == 0 ? 0 : price - 1) : mp == 3 ? type(uint256).max : 0;
        uint256 d = (how >> 5) % 8;
        address relayer = d < 3 ? address(0) : d == 7 ? stranger : rel[d - 3];
        if ((callerSeed >> 4) % 4 != 0 && known) _fundCredit(c, price);
        bytes memory input = (how >> 8) % 8 == 0 ? new bytes(300) : abi.encodePacked(modelSeed);
        uint256 credit = gCredit[caller];
        bytes4 want;
        if (gPaused) want = ENFORCED_PAUSE;
        else if (relayer != address(0) && !_active(relayer)) want = IInferenceEscrow.InferenceEscrow_NotActiveRelayer.selector;
        else if (!known) want = ModelRegistry.ModelRegistry_UnknownModel.selector;
        else if (!_model(modelId).active) want = IInferenceEscrow.InferenceEscrow_ModelInactive.selector;
        else if (version > latest) want = IInferenceEscrow.InferenceEscrow_UnknownVersion.selector;
        else if (price > maxPrice) want = IInferenceEscrow.InferenceEscrow_PriceAboveMax.selector;
        else if (credit < price) want = IInferenceEscrow.InferenceEscrow_InsufficientCredit.selector;
        bytes memory data = relayer == address(0)
            ? abi.encodeCall(escrow.requestInference, (modelId, version, input, maxPrice))
            : abi.encodeCall(escrow.requestInferenceVia, (modelId, version, input, maxPrice, relayer));
        (bool ok, bytes memory ret) = _exec(caller, address(escrow), data);
        if (!_expect(ok, ret, want, relayer == address(0) ? "requestInference (open)" : "requestInferenceVia (designated)")) return;
        uint256 id = _reqId(c, ++gReqCount[c]);
        if (abi.decode(ret, (uint256)) != id) _violate("a request got another id than its caller's next", id, abi.decode(ret, (uint256)));
        gCredit[caller] -= price;
        gReqs.push(
            GRequest(id, uint8(c), modelId, version == 0 ? latest : version, price, keccak256(input), _now() + TIMEOUT, 1, relayer, 0)
        );
        reqIndex[id] = gReqs.length;
    }

    /// @dev A pending request (three times in four one still in time), an ended one, or an
    /// unknown id (returns index type(uint256).max).
    function _requestPick(uint256 s) internal view returns (uint256) {
        uint256 n = gReqs.length;
        if (n == 0 || s % 16 == 0) return type(uint256).max;
        uint256 mode = (s >> 4) % 8;
        for (uint256 i; i < n; ++i) {
            uint256 j = ((s >> 8) % n + i) % n;
            GRequest storage g = gReqs[j];
            if (mode == 0 && g.status != 1) return j; // an ended one
            if (mode == 1 && g.status == 1) return j; // pending, in time or not
            if (mode > 1 && g.status == 1 && g.deadline >= block.timestamp) return j;
        }
        return (s >> 8) % n;
    }

    struct Att {
        IInferenceEscrow.Attestation a;
        bytes sig;
        address signer;
        bool sigOk;
        uint256 index; // into gReqs; max: unknown
    }

    /// @dev Kinds: 0-5 by the designated relayer or an active one; 6 by another relayer than
    /// the designated one; 7 by a stranger; 8 another input hash; 9 another version; 10 a
    /// signature that does not recover; 11 by any relayer slot (maybe inactive or unbonded).
    function _buildAtt(uint256 s) internal view returns (Att memory att) {
        att.index = _requestPick(s);
        if (att.index == type(uint256).max) {
            att.a = IInferenceEscrow.Attestation(_reqId(s % NC, gReqCount[s % NC] + 1 + (s >> 2) % 3), 1, 1, keccak256(""), keccak256("out"));
        } else {
            GRequest storage g = gReqs[att.index];
            att.a = IInferenceEscrow.Attestation(g.id, g.modelId, g.version, g.inputHash, keccak256(abi.encode("out", s)));
            if (g.status != 1) {
                // An ended request keeps only its status: attest what it was.
                att.a.modelId = g.modelId;
            }
        }
        uint256 kind = (s >> 12) % 12;
        uint256 key_;
        address designated = att.index == type(uint256).max ? address(0) : gReqs[att.index].relayer;
        if (kind <= 5) {
            if (designated != address(0)) {
                key_ = relKeys[_relSlot(designated)];
            } else {
                key_ = relKeys[0];
                for (uint256 i; i < 3; ++i) {
                    uint256 j = ((s >> 20) + i) % 3;
                    if (_active(rel[j])) {
                        key_ = relKeys[j];
                        break;
                    }
                }
            }
        } else if (kind == 6) {
            uint256 j = (s >> 20) % 3;
            if (rel[j] == designated) j = (j + 1) % 3;
            key_ = relKeys[j];
        } else if (kind == 7) {
            key_ = strangerKey;
        } else {
            key_ = relKeys[(s >> 20) % 3];
        }
        if (kind == 8) att.a.inputHash = keccak256(abi.encode(s));
        if (kind == 9) att.a.version += 1;
        att.signer = vm.addr(key_);
        att.sigOk = kind != 10;
        att.sig = kind == 10 ? ((s >> 30) % 2 == 0 ? new bytes(65) : new bytes(64)) : _signDigest(key_, _attDigest(att.a));
    }

    /// @dev fulfillBatch's SkipReason for `at` on the model now (0: it settles).
    function _predictAtt(Att memory att) internal view returns (uint8) {
        if (att.index == type(uint256).max) return 1;
        GRequest storage g = gReqs[att.index];
        if (g.status != 1) return 1;
        if (block.timestamp > g.deadline) return 2;
        if (att.a.modelId != g.modelId || att.a.version != g.version || att.a.inputHash != g.inputHash) return 3;
        if (!att.sigOk) return 4;
        if (g.relayer != address(0) && att.signer != g.relayer) return 6;
        if (!_active(att.signer)) return 5;
        return 0;
    }

    function _applyAtt(Att memory att) internal {
        GRequest storage g = gReqs[att.index];
        g.status = 2;
        gStatCalls[g.modelId] += 1;
        gStatRevenue[g.modelId] += g.price;
        requestCallsOf[g.modelId] += 1;
        requestRevenueOf[g.modelId] += g.price;
        requestsSettled += 1;
        _book(att.signer, g.modelId, g.price);
    }

    function _attError(Att memory att, uint8 reason) internal view returns (bytes4) {
        if (reason == 0) return OK;
        if (reason == 1) {
            return att.index == type(uint256).max
                ? IInferenceEscrow.InferenceEscrow_UnknownRequest.selector
                : IInferenceEscrow.InferenceEscrow_NotPending.selector;
        }
        if (reason == 2) return IInferenceEscrow.InferenceEscrow_DeadlinePassed.selector;
        if (reason == 3) return IInferenceEscrow.InferenceEscrow_AttestationMismatch.selector;
        if (reason == 4) return IInferenceEscrow.InferenceEscrow_InvalidSignature.selector;
        if (reason == 6) return IInferenceEscrow.InferenceEscrow_NotDesignatedRelayer.selector;
        return IInferenceEscrow.InferenceEscrow_NotActiveRelayer.selector;
    }

    /// @param when 0 now; 1, 2, 3: first to the request's deadline - 1, deadline, deadline + 1.
    function fulfill(uint256 seed, uint256 when) external watched {
        Att memory att = _buildAtt(seed);
        when %= 6;
        if (when >= 3 && att.index != type(uint256).max && gReqs[att.index].status == 1) {
            _warpTo(uint256(gReqs[att.index].deadline) + when - 4);
        }
        uint8 reason = _predictAtt(att);
        vm.recordLogs();
        (bool ok, bytes memory ret) =
            _exec(_accountPick(seed >> 100), address(escrow), abi.encodeCall(escrow.fulfill, (att.a, att.sig)));
        bool went = _expect(ok, ret, _attError(att, reason), string.concat("fulfill ", _digit(reason)));
        if (went && reason == 0) _applyAtt(att);
        _countEndings();
    }

    /// @notice Up to four attestations, valid or not, sometimes one twice; each must settle or be
    /// skipped for exactly the model's reason.
    function fulfillBatch(uint256 seed) external watched {
        uint256 n = 1 + seed % 4;
        Att[] memory atts = new Att[](n);
        for (uint256 i; i < n; ++i) {
            atts[i] = _buildAtt(uint256(keccak256(abi.encode(seed, i))));
        }
        if (seed % 3 == 0 && n > 1) atts[n - 1] = atts[0];
        IInferenceEscrow.Attestation[] memory list = new IInferenceEscrow.Attestation[](n);
        bytes[] memory sigs = new bytes[](n);
        uint8[] memory reasons = new uint8[](n);
        for (uint256 i; i < n; ++i) {
            list[i] = atts[i].a;
            sigs[i] = atts[i].sig;
            reasons[i] = _predictAtt(atts[i]);
            if (reasons[i] == 0) _applyAtt(atts[i]);
        }
        vm.recordLogs();
        (bool ok, bytes memory ret) =
            _exec(_accountPick(seed >> 100), address(escrow), abi.encodeCall(escrow.fulfillBatch, (list, sigs)));
        if (!_expect(ok, ret, OK, "fulfillBatch")) return;
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 item;
        for (uint256 l; l < logs.length; ++l) {
            if (logs[l].emitter != address(escrow)) continue;
            bytes32 topic = logs[l].topics[0];
            if (topic != FULFILLED_TOPIC && topic != SKIPPED_TOPIC) continue;
            if (item >= n) {
                _violate("more attestation events than items", item, 0);
                break;
            }
            if (uint256(logs[l].topics[1]) != list[item].requestId) _violate("an attestation event names another request", item, 0);
            if (topic == FULFILLED_TOPIC) {
                if (reasons[item] != 0) _violate("an attestation settled that the model skips, reason", reasons[item], 0);
                if (logs[l].topics[2] != bytes32(uint256(uint160(atts[item].signer)))) _violate("InferenceFulfilled names another relayer than the signer", item, 0);
                _endOf(list[item].requestId);
            } else {
                uint8 reason = abi.decode(logs[l].data, (uint8));
                if (reason != reasons[item]) _violate("an attestation was skipped for another reason than the model's", reason, reasons[item]);
                _count(string.concat("attestation skipped ", _digit(reason)));
            }
            ++item;
        }
        if (item != n) _violate("an attestation ended in no event", item, n);
    }

    /// @dev Senders: 0 the designated relayer (if any), 1-3 relayer slots 0-2, 4 the caller, 5 a stranger.
    function reject(uint256 seed, uint256 reasonSeed) external watched {
        uint256 index = _requestPick(seed);
        uint256 id = index == type(uint256).max ? _reqId(seed % NC, gReqCount[seed % NC] + 1) : gReqs[index].id;
        uint256 who = (seed >> 40) % 6;
        address designated = index == type(uint256).max || gReqs[index].status != 1 ? address(0) : gReqs[index].relayer;
        address sender = who == 0
            ? (designated != address(0) ? designated : rel[0])
            : who <= 3 ? rel[who - 1] : who == 4 ? callers[index == type(uint256).max ? seed % NC : gReqs[index].caller] : stranger;
        uint8 reason = uint8(reasonSeed % 8 == 0 ? reasonSeed % 2 * 5 : 1 + reasonSeed % 4); // 0 or 5 are invalid
        uint8 status = index == type(uint256).max ? 0 : gReqs[index].status;
        bytes4 want;
        if (reason < 1 || reason > 4) want = IInferenceEscrow.InferenceEscrow_InvalidRejectReason.selector;
        else if (!(designated != address(0) && designated == sender) && status == 0) want = IInferenceEscrow.InferenceEscrow_UnknownRequest.selector;
        else if (!(designated != address(0) && designated == sender) && status == 1) want = IInferenceEscrow.InferenceEscrow_NotDesignatedRelayer.selector;
        else if (status != 1) want = IInferenceEscrow.InferenceEscrow_NotPending.selector;
        else if (gCredit[callers[gReqs[index].caller]] + gReqs[index].price > MAX_CREDIT) want = IInferenceEscrow.InferenceEscrow_CreditOverflow.selector;
        vm.recordLogs();
        (bool ok, bytes memory ret) = _exec(sender, address(escrow), abi.encodeCall(escrow.reject, (id, reason)));
        string memory what = designated == address(0)
            ? "reject an open or ended request"
            : designated == sender ? "reject by the designated relayer" : "reject by another than the designated relayer";
        if (_expect(ok, ret, want, what)) {
            GRequest storage g = gReqs[index];
            g.status = 3;
            gCredit[callers[g.caller]] += g.price;
        }
        _countEndings();
    }

    /// @param when 0 now; 1, 2, 3: first to the deadline - 1, deadline, deadline + 1.
    function refund(uint256 seed, uint256 when) external watched {
        uint256 index = _requestPick(seed);
        uint256 id = index == type(uint256).max ? _reqId(seed % NC, gReqCount[seed % NC] + 1) : gReqs[index].id;
        when %= 4;
        bool pending = index != type(uint256).max && gReqs[index].status == 1;
        if (when != 0 && pending) _warpTo(uint256(gReqs[index].deadline) + when - 2);
        uint8 status = index == type(uint256).max ? 0 : gReqs[index].status;
        uint256 deadline = pending ? gReqs[index].deadline : 0;
        bytes4 want;
        if (block.timestamp <= deadline) want = IInferenceEscrow.InferenceEscrow_DeadlineNotPassed.selector;
        else if (status == 0) want = IInferenceEscrow.InferenceEscrow_UnknownRequest.selector;
        else if (status != 1) want = IInferenceEscrow.InferenceEscrow_NotPending.selector;
        else if (gCredit[callers[gReqs[index].caller]] + gReqs[index].price > MAX_CREDIT) want = IInferenceEscrow.InferenceEscrow_CreditOverflow.selector;
        vm.recordLogs();
        (bool ok, bytes memory ret) = _exec(_accountPick(seed >> 100), address(escrow), abi.encodeCall(escrow.refund, (id)));
        if (_expect(ok, ret, want, "refund")) {
            GRequest storage g = gReqs[index];
            g.status = 4;
            gCredit[callers[g.caller]] += g.price;
        }
        _countEndings();
    }

    function _countEndings() internal {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter != address(escrow)) continue;
            bytes32 topic = logs[i].topics[0];
            if (topic != FULFILLED_TOPIC && topic != REJECTED_TOPIC && topic != REFUNDED_TOPIC) continue;
            _endOf(uint256(logs[i].topics[1]));
        }
    }

    function _endOf(uint256 id) internal {
        uint256 index = reqIndex[id];
        if (index == 0) {
            _violate("an unknown request ended", id, 0);
            return;
        }
        GRequest storage g = gReqs[index - 1];
        if (++g.endings > 1) _violate("a request ended twice", id, g.endings);
    }

    // ------------------------------------------------------------------ time

    /// @notice Moves time forward to a boundary (-1, at, +1) of something pending, or by a few
    /// seconds, or far. Kinds: 0 a pending request's deadline, 1 a release's readyAt, 2 a held
    /// receipt's deadline, 3 a price notice's end, 4 that end + withdrawalDelay (where a first
    /// settlement stopped seeing the floor before d01df69; no price may change there now), 5 a
    /// fee change, 6 a min-bond rise, 7 a payee change, 8 a signer change, 9 an unbonding's end,
    /// 10 a few seconds, 11 up to 2 unbond delays.
    function warp(uint256 kind, uint256 pick, uint256 delta) external watched {
        kind %= 12;
        uint256 target;
        if (kind == 0 && gReqs.length != 0) target = gReqs[pick % gReqs.length].deadline;
        else if (kind == 1) target = gRes[pick % NC][(pick >> 4) % NR].releaseAt;
        else if (kind == 2 && held.length != 0) target = held[pick % held.length].r.deadline;
        else if (kind == 3) target = _model(1 + pick % gModels.length).noticeEnds;
        else if (kind == 4) target = _model(1 + pick % gModels.length).noticeEnds + WD;
        else if (kind == 5) target = gFeeAt;
        else if (kind == 6) target = gMinAt;
        else if (kind == 7) target = _model(1 + pick % gModels.length).payeesAt;
        else if (kind == 8) target = gSigner[pick % NC].nextAt;
        else if (kind == 9) target = gRel[pick % 3].unbondAt;
        else if (kind == 10) target = block.timestamp + 1 + pick % 60;
        else if (kind == 11) target = block.timestamp + pick % (2 * UNBOND);
        if (target == 0) target = block.timestamp + 1 + pick % 60;
        else if (kind < 10) target = target + (delta % 3) - 1;
        _warpTo(target);
        _count("warp");
    }

    function _warpTo(uint256 target) internal {
        if (target > block.timestamp) vm.warp(target);
    }

    // ------------------------------------------------------------------ relayers

    /// @param choice 0 the minimum bond - 1, 1 exactly the minimum, 2 2**128 - 1, 3 2**128,
    /// else the minimum plus some (register); or adding 0, 1, up to the cap, one past it.
    function bondRelayer(uint256 slotSeed, uint256 choice) external watched {
        uint256 i = slotSeed % 3;
        address relayer = rel[i];
        GRelayer storage g = gRel[i];
        if (!g.registered) {
            uint256 least = _minBondNow();
            uint256 k = choice % 8;
            uint256 bond = k == 0 ? (least == 0 ? 0 : least - 1) : k == 1 ? least : k == 2 ? MAX_BOND : k == 3 ? MAX_BOND + 1 : least + 1 + (choice >> 8) % 1e24;
            _register(i, bond);
            return;
        }
        uint256 k2 = choice % 6;
        uint256 amount = k2 == 0 ? 0 : k2 == 1 ? 1 : k2 == 2 ? MAX_BOND - g.bond : k2 == 3 ? MAX_BOND - g.bond + 1 : 1 + (choice >> 8) % 1e24;
        bytes4 want = amount == 0
            ? RelayerRegistry.RelayerRegistry_ZeroAmount.selector
            : g.unbondAt != 0
                ? RelayerRegistry.RelayerRegistry_Unbonding.selector
                : g.bond + amount > MAX_BOND ? RelayerRegistry.RelayerRegistry_BondTooHigh.selector : OK;
        _mintTo(relayer, amount);
        vm.prank(relayer);
        token.approve(address(relayers), amount);
        vm.prank(relayer);
        (bool ok, bytes memory ret) = address(relayers).call(abi.encodeCall(relayers.addBond, (amount)));
        if (_expect(ok, ret, want, "addBond")) g.bond += amount;
    }

    function _register(uint256 i, uint256 bond) internal {
        address relayer = rel[i];
        GRelayer storage g = gRel[i];
        uint256 least = _minBondNow();
        bytes4 want = g.registered
            ? RelayerRegistry.RelayerRegistry_AlreadyRegistered.selector
            : bond < least || bond == 0
                ? RelayerRegistry.RelayerRegistry_BondTooLow.selector
                : bond > MAX_BOND ? RelayerRegistry.RelayerRegistry_BondTooHigh.selector : OK;
        _mintTo(relayer, bond);
        vm.prank(relayer);
        token.approve(address(relayers), bond);
        vm.prank(relayer);
        (bool ok, bytes memory ret) = address(relayers).call(abi.encodeCall(relayers.register, ("http://relayer", bond)));
        if (_expect(ok, ret, want, "register relayer")) {
            g.registered = true;
            g.bond = bond;
            g.unbondAt = 0;
        }
    }

    /// @param mode 0 beginUnbond; 1-4 withdrawBond now, or first at unbondAt - 1, at, + 1.
    function unbondRelayer(uint256 slotSeed, uint256 mode) external watched {
        uint256 i = slotSeed % 3;
        address relayer = rel[i];
        GRelayer storage g = gRel[i];
        mode %= 5;
        if (mode == 0) {
            if ((slotSeed >> 4) % 2 == 0 && i < 2) return; // honest relayers leave less often
            bytes4 want = !g.registered
                ? RelayerRegistry.RelayerRegistry_NotRegistered.selector
                : g.unbondAt != 0 ? RelayerRegistry.RelayerRegistry_Unbonding.selector : OK;
            vm.prank(relayer);
            (bool ok, bytes memory ret) = address(relayers).call(abi.encodeCall(relayers.beginUnbond, ()));
            if (_expect(ok, ret, want, "beginUnbond")) g.unbondAt = _now() + UNBOND;
            return;
        }
        if (mode > 1 && g.unbondAt != 0) _warpTo(uint256(g.unbondAt) + mode - 3);
        bytes4 want2 = !g.registered
            ? RelayerRegistry.RelayerRegistry_NotRegistered.selector
            : g.unbondAt == 0
                ? RelayerRegistry.RelayerRegistry_NotUnbonding.selector
                : block.timestamp < g.unbondAt ? RelayerRegistry.RelayerRegistry_UnbondPending.selector : OK;
        uint256 before = token.balanceOf(relayer);
        vm.prank(relayer);
        (bool ok2, bytes memory ret2) = address(relayers).call(abi.encodeCall(relayers.withdrawBond, ()));
        if (_expect(ok2, ret2, want2, "withdrawBond")) {
            if (token.balanceOf(relayer) != before + g.bond) _violate("withdrawBond paid another amount", g.bond, 0);
            delete gRel[i];
        }
    }

    /// @param choice 0 zero, 1 one, 2 the default, 3 a relayer's bond, 4 that + 1, 5 2**112 - 1,
    /// 6 2**112, else some; `seed` bit 8: by the attacker instead of the owner.
    function setMinBond(uint256 choice, uint256 seed) external watched {
        uint256 k = choice % 8;
        uint256 bond = gRel[seed % 3].bond;
        uint256 value = k == 0 ? 0 : k == 1 ? 1 : k == 2 ? MIN_BOND : k == 3 ? bond : k == 4 ? bond + 1 : k == 5 ? MAX_MIN_BOND : k == 6 ? MAX_MIN_BOND + 1 : (choice >> 8) % 1e21;
        bool byOwner = (seed >> 8) % 8 != 0;
        bytes4 want = !byOwner ? NOT_OWNER : value > MAX_MIN_BOND ? RelayerRegistry.RelayerRegistry_BondTooHigh.selector : OK;
        (bool ok, bytes memory ret) =
            _exec(byOwner ? address(this) : attacker, address(relayers), abi.encodeCall(relayers.setMinBond, (value)));
        if (_expect(ok, ret, want, "setMinBond")) {
            uint256 inForce = _minBondNow();
            if (value <= inForce) {
                gMinCur = value;
                gMinNext = 0;
                gMinAt = 0;
            } else {
                gMinCur = inForce;
                gMinNext = value;
                gMinAt = _now() + UNBOND;
            }
        }
    }

    // ------------------------------------------------------------------ the owner

    /// @param choice 0, 1, 1_000, 1_001, 3_000, 3_001, else some below the cap; `seed` bit 0
    /// protocol or relayer fee, bits 4-6: by the attacker one time in eight.
    function setFees(uint256 choice, uint256 seed) external watched {
        bool protocol = seed % 2 == 0;
        uint256 k = choice % 8;
        uint16 bps = uint16(k == 0 ? 0 : k == 1 ? 1 : k == 2 ? 1_000 : k == 3 ? 1_001 : k == 4 ? 3_000 : k == 5 ? 3_001 : (choice >> 8) % (protocol ? 1_001 : 3_001));
        bool byOwner = (seed >> 4) % 8 != 0;
        bytes4 want = !byOwner
            ? NOT_OWNER
            : bps > (protocol ? 1_000 : 3_000) ? IInferenceEscrow.InferenceEscrow_FeeTooHigh.selector : OK;
        bytes memory data = protocol ? abi.encodeCall(escrow.setProtocolFeeBps, (bps)) : abi.encodeCall(escrow.setRelayerFeeBps, (bps));
        (bool ok, bytes memory ret) = _exec(byOwner ? address(this) : attacker, address(escrow), data);
        if (_expect(ok, ret, want, "set a fee (scheduled)")) {
            (uint16 p, uint16 r) = _feesNow();
            (uint16 sp, uint16 sr) = gFeeAt != 0 ? (gNP, gNR) : (p, r);
            gP = p;
            gR = r;
            gNP = protocol ? bps : sp;
            gNR = protocol ? sr : bps;
            gFeeAt = _now() + TERMS;
        }
    }

    function setTreasury(uint256 choice) external watched {
        address to = choice % 5 == 0 ? address(0) : treasuries[choice % 2];
        bool byOwner = (choice >> 4) % 8 != 0;
        bytes4 want = !byOwner ? NOT_OWNER : to == address(0) ? IInferenceEscrow.InferenceEscrow_ZeroAddress.selector : OK;
        (bool ok, bytes memory ret) =
            _exec(byOwner ? address(this) : attacker, address(escrow), abi.encodeCall(escrow.setTreasury, (to)));
        if (_expect(ok, ret, want, "setTreasury")) gTreasury = to;
    }

    /// @dev Pauses one time in six, unpauses otherwise (each may be refused: already so).
    function setPaused(uint256 seed) external watched {
        bool pause = seed % 6 == 0;
        bytes4 want = pause == gPaused ? (pause ? ENFORCED_PAUSE : EXPECTED_PAUSE) : OK;
        (bool ok, bytes memory ret) =
            address(escrow).call(pause ? abi.encodeCall(escrow.pause, ()) : abi.encodeCall(escrow.unpause, ()));
        if (_expect(ok, ret, want, "pause/unpause")) gPaused = pause;
    }

    // ------------------------------------------------------------------ models

    function registerModel(uint256 authorSeed, uint256 priceSeed) external watched {
        if (gModels.length >= MAX_MODELS) return;
        _registerModel(authors[authorSeed % 3], _priceOf(priceSeed));
    }

    function _registerModel(address author, uint256 price) internal {
        bytes4 want = price > MAX_PRICE ? ModelRegistry.ModelRegistry_PriceTooHigh.selector : OK;
        vm.prank(author);
        (bool ok, bytes memory ret) = address(registry).call(
            abi.encodeCall(registry.registerModel, ("m", keccak256(abi.encode(gModels.length)), "", price))
        );
        if (!_expect(ok, ret, want, "registerModel")) return;
        gModels.push();
        GModel storage m = gModels[gModels.length - 1];
        m.owner = author;
        m.price = price;
        m.lowest = price;
        m.latest = 1;
        m.active = true;
        if (abi.decode(ret, (uint256)) != gModels.length) _violate("a model got another id", gModels.length, abi.decode(ret, (uint256)));
    }

    /// @param how 0 a cut, 1 a rise by one, 2 a doubling, 3 to 2**128 - 1, 4 one past it,
    /// 5 the same price, 6 zero, 7 any; `seed` bits 8+: by another than the owner, one time in 8.
    function setPrice(uint256 modelSeed, uint256 how) external watched {
        uint256 modelId = 1 + modelSeed % gModels.length;
        GModel storage m = _model(modelId);
        uint256 k = how % 8;
        uint256 p = m.price;
        uint256 price = k == 0 ? p / 2 : k == 1 ? p + 1 : k == 2 ? (p >= MAX_PRICE / 2 ? MAX_PRICE : 2 * p + 1) : k == 3 ? MAX_PRICE : k == 4 ? MAX_PRICE + 1 : k == 5 ? p : k == 6 ? 0 : _priceOf(how >> 8);
        address sender = (modelSeed >> 8) % 8 == 0 ? authors[(modelSeed >> 12) % 3] : m.owner;
        _setPrice(modelId, price, sender);
    }

    function _setPrice(uint256 modelId, uint256 price, address sender) internal {
        GModel storage m = _model(modelId);
        if (price > MAX_PRICE) price = sender == m.owner ? price : MAX_PRICE;
        bytes4 want = sender != m.owner
            ? ModelRegistry.ModelRegistry_NotModelOwner.selector
            : price > MAX_PRICE ? ModelRegistry.ModelRegistry_PriceTooHigh.selector : OK;
        vm.prank(sender);
        (bool ok, bytes memory ret) = address(registry).call(abi.encodeCall(registry.setPrice, (modelId, price)));
        if (!_expect(ok, ret, want, price > m.price ? "setPrice (rise)" : "setPrice (cut or same)")) return;
        uint256 floor = _receiptPriceNow(modelId);
        m.price = price;
        if (price < m.lowest) m.lowest = price;
        if (price > floor) {
            m.noticeFloor = floor;
            m.noticeEnds = _now() + PN;
        }
    }

    /// @notice 1-3 payees from a pool that includes the attacker and a relayer; one time in six an
    /// invalid list (duplicate, zero share, zero address, wrong total, none); one time in eight by
    /// another than the owner.
    function setPayees(uint256 modelSeed, uint256 seed) external watched {
        uint256 modelId = 1 + modelSeed % gModels.length;
        GModel storage m = _model(modelId);
        address[5] memory pool = [authors[0], authors[1], attacker, rel[0], callers[0]];
        uint256 n = 1 + seed % 3;
        uint256 bad = (seed >> 2) % 12; // 0-4: a kind of invalid list, else valid
        if (bad == 4) n = 0;
        address[] memory payees = new address[](n);
        uint16[] memory shares = new uint16[](n);
        uint256 left = BPS;
        for (uint256 i; i < n; ++i) {
            payees[i] = pool[((seed >> 8) + i) % 5];
            uint256 share = i == n - 1 ? left : 1 + (seed >> (16 * (i + 1))) % (left - (n - 1 - i));
            shares[i] = uint16(share);
            left -= share;
        }
        bytes4 want = OK;
        if (bad == 4) {
            want = ModelRegistry.ModelRegistry_PayeeCount.selector;
        } else if (bad == 0 && n > 1) {
            payees[n - 1] = payees[0];
            want = ModelRegistry.ModelRegistry_DuplicatePayee.selector;
        } else if (bad == 1) {
            shares[n - 1] = 0;
            want = ModelRegistry.ModelRegistry_ZeroShare.selector;
        } else if (bad == 2) {
            payees[n - 1] = address(0);
            want = ModelRegistry.ModelRegistry_ZeroAddress.selector;
        } else if (bad == 3) {
            shares[0] += 1;
            want = ModelRegistry.ModelRegistry_SharesTotal.selector;
        }
        if (bad == 1 && n > 1) {
            // The zero share of the last payee comes before the total is checked.
            want = ModelRegistry.ModelRegistry_ZeroShare.selector;
        }
        address sender = (modelSeed >> 8) % 8 == 0 ? authors[(modelSeed >> 12) % 3] : m.owner;
        if (sender != m.owner) want = ModelRegistry.ModelRegistry_NotModelOwner.selector;
        vm.prank(sender);
        (bool ok, bytes memory ret) = address(registry).call(abi.encodeCall(registry.setPayees, (modelId, payees, shares)));
        bool later = m.explicitPayees;
        if (!_expect(ok, ret, want, later ? "setPayees (delayed)" : "setPayees (first, at once)")) return;
        if (m.payeesAt != 0 && block.timestamp >= m.payeesAt) {
            m.cur = m.nxt;
            m.curShares = m.nxtShares;
            m.payeesAt = 0;
        }
        if (!m.explicitPayees) {
            m.cur = payees;
            m.curShares = shares;
            m.explicitPayees = true;
        } else {
            m.nxt = payees;
            m.nxtShares = shares;
            m.payeesAt = _now() + PN;
        }
    }

    /// @dev Switches a model off one time in four, on otherwise.
    function setActive(uint256 modelSeed, uint256 seed) external watched {
        uint256 modelId = 1 + modelSeed % gModels.length;
        bool active = seed % 4 != 0;
        vm.prank(_model(modelId).owner);
        registry.setActive(modelId, active);
        _model(modelId).active = active;
    }

    function publishVersion(uint256 modelSeed, uint256 seed) external watched {
        uint256 modelId = 1 + modelSeed % gModels.length;
        GModel storage m = _model(modelId);
        bool zero = seed % 8 == 0;
        address sender = seed % 8 == 1 ? stranger : m.owner;
        bytes4 want = sender != m.owner ? ModelRegistry.ModelRegistry_NotModelOwner.selector : zero ? ModelRegistry.ModelRegistry_ZeroDigest.selector : OK;
        vm.prank(sender);
        (bool ok, bytes memory ret) = address(registry).call(
            abi.encodeCall(registry.publishVersion, (modelId, zero ? bytes32(0) : keccak256(abi.encode(modelId, m.latest)), ""))
        );
        if (_expect(ok, ret, want, "publishVersion")) m.latest += 1;
    }

    /// @dev To another author (the attacker among them); one time in eight to the zero address.
    function transferModel(uint256 modelSeed, uint256 seed) external watched {
        uint256 modelId = 1 + modelSeed % gModels.length;
        GModel storage m = _model(modelId);
        address to = seed % 8 == 0 ? address(0) : authors[seed % 3];
        bytes4 want = to == address(0) ? ModelRegistry.ModelRegistry_ZeroAddress.selector : OK;
        vm.prank(m.owner);
        (bool ok, bytes memory ret) = address(registry).call(abi.encodeCall(registry.transferModel, (modelId, to)));
        if (_expect(ok, ret, want, "transferModel")) m.owner = to;
    }

    // ------------------------------------------------------------------ helpers

    function _digit(uint256 d) internal pure returns (string memory) {
        bytes memory b = new bytes(1);
        b[0] = bytes1(uint8(48 + d % 10));
        return string(b);
    }

    function countOf(string calldata what) external view returns (uint256) {
        return calls[keccak256(bytes(what))];
    }
}
