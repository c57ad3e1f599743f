// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {WithVm} from "./Vm.sol";
import {HubToken} from "../../contracts/HubToken.sol";
import {ModelRegistry} from "../../contracts/ModelRegistry.sol";
import {RelayerRegistry} from "../../contracts/RelayerRegistry.sol";
import {InferenceEscrow} from "../../contracts/InferenceEscrow.sol";
import {IInferenceEscrow} from "../../contracts/interfaces/IInferenceEscrow.sol";
import {TestWallet} from "../../contracts/testing/TestWallet.sol";

/// @title A reference model of the three contracts, kept by the invariant handler
/// @notice Every handler action first predicts from this model what the contracts must do
/// (succeed, or revert with which error; which items of a batch settle, for how much, or are
/// skipped for which reason), then performs the action on the real contracts, compares, and
/// applies the predicted effects here. `mismatch()` compares the whole model with the
/// contracts' views, so a planted bug shows as soon as its effect is visible.
///
/// The model is written from the design (docs and /tmp/design.md at bf7de91), not from the
/// contract code: digests are computed here (EIP-712), fees, minimum bond, payees, receipt
/// signers and price notices are tracked with their own clocks.
///
/// Actors (roles overlap on purpose):
/// - callers 0, 1: honest EOAs; caller 2: an attacker EOA that is also a relayer (relayer slot 2),
///   a model author and a payee; caller 3: a TestWallet (ERC-1271) contract wallet whose owner
///   key cannot sign receipts until the wallet registers a receipt signer key.
/// - relayer slots 0, 1: honest bonded relayers; 2: the attacker; 3: a stranger who never bonds.
/// - authors 0, 1 and the attacker; treasuries 0 and 1 (setTreasury).
abstract contract HubModel is WithVm {
    uint256 internal constant BPS = 10_000;
    uint256 internal constant MAX_PRICE = type(uint128).max;
    uint256 internal constant MAX_CREDIT = type(uint160).max;
    uint256 internal constant MAX_CALLS = type(uint64).max;
    uint256 internal constant MAX_MIN_BOND = type(uint112).max;
    uint256 internal constant MAX_BOND = type(uint128).max;
    uint256 internal constant MIN_BOND = 100e18;
    // Distinct periods, so that each boundary is a time of its own.
    uint64 internal constant TIMEOUT = 600; // requestTimeout
    uint64 internal constant WD = 1800; // withdrawalDelay: releases, signer changes
    uint64 internal constant TERMS = 1800; // termsNoticePeriod = max(TIMEOUT, WD)
    uint64 internal constant PN = 3600; // priceNoticePeriod: price rises for receipts, payee changes
    uint64 internal constant UNBOND = 7200; // unbondDelay: min-bond rises, unbonding
    uint16 internal constant FEE_P0 = 500;
    uint16 internal constant FEE_R0 = 1_000;
    uint256 internal constant NC = 4; // callers
    uint256 internal constant NR = 4; // relayer slots
    uint256 internal constant MAX_MODELS = 6;

    bytes32 internal constant RECEIPT_TYPEHASH = keccak256(
        "Receipt(address caller,address relayer,uint256 modelId,uint256 calls,uint256 amount,uint64 deadline)"
    );
    bytes32 internal constant ATTESTATION_TYPEHASH = keccak256(
        "Attestation(uint256 requestId,uint256 modelId,uint32 version,bytes32 inputHash,bytes32 outputHash)"
    );

    HubToken public token;
    ModelRegistry public registry;
    RelayerRegistry public relayers;
    InferenceEscrow public escrow;
    TestWallet public wallet;

    address[NC] internal callers;
    uint256[3] internal callerKeys; // callers 0-2; the wallet has none
    uint256 internal walletOwnerKey = 0x0A11E7;
    address internal walletOwner;
    uint256[2] internal signerKeys = [uint256(0x5161), 0x5162];
    address[2] internal signerAddrs;
    address[NR] internal rel; // relayer slots
    uint256[NR] internal relKeys;
    address internal attacker; // callers[2] == rel[2]
    address internal stranger; // rel[3]
    uint256 internal strangerKey = 0x5757;
    address[3] internal authors; // U0, U1, the attacker
    address[2] internal treasuries = [address(0x7EA5), address(0x7EA6)];

    // ------------------------------------------------------------------ the model's state

    // Fees (InferenceEscrow): in force, and a change waiting for feeNextAt.
    uint16 internal gP;
    uint16 internal gR;
    uint16 internal gNP;
    uint16 internal gNR;
    uint64 internal gFeeAt;
    address internal gTreasury;
    bool internal gPaused;

    // Minimum bond (RelayerRegistry)
    uint256 internal gMinCur;
    uint256 internal gMinNext;
    uint64 internal gMinAt;

    struct GRelayer {
        uint256 bond;
        uint64 unbondAt;
        bool registered;
    }

    GRelayer[3] internal gRel; // relayer slots 0-2 (the stranger never bonds)

    struct GModel {
        address owner;
        uint256 price;
        uint32 latest;
        bool active;
        bool explicitPayees;
        address[] cur;
        uint16[] curShares;
        address[] nxt;
        uint16[] nxtShares;
        uint64 payeesAt; // 0: no change pending
        uint256 noticeFloor; // the receipt price during the last rise's notice (priceNotice)
        uint64 noticeEnds;
        uint256 lowest; // the lowest receipt price the model ever had (receiptTerms' floorPrice)
    }

    GModel[] internal gModels; // model id i + 1

    mapping(address => uint256) internal gCredit;
    mapping(address => uint256) internal gEarn;

    struct GReservation {
        uint256 amount;
        uint256 releasing;
        uint64 releaseAt;
        uint64 openedAt; // the first reserve or reserveFor (0: never); never reset
    }

    GReservation[NR][NC] internal gRes;

    struct GSigner {
        address current;
        address next;
        uint64 nextAt;
    }

    GSigner[NC] internal gSigner;

    struct GChannel {
        uint256 calls;
        uint256 amount;
        uint64 settledAt;
        uint256 paidSum; // sum of the `paid` of its ReceiptSettled events
        uint256 settlements;
    }

    struct ChannelId {
        uint8 caller;
        uint8 relayer;
        uint256 modelId;
    }

    mapping(bytes32 => GChannel) internal gCh;
    mapping(bytes32 => bool) internal knownChannel;
    ChannelId[] public channelIds;

    struct GRequest {
        uint256 id;
        uint8 caller;
        uint256 modelId;
        uint32 version;
        uint256 price;
        bytes32 inputHash;
        uint64 deadline;
        uint8 status;
        address relayer; // designated; 0: open
        uint8 endings; // terminal events seen
    }

    GRequest[] internal gReqs;
    mapping(uint256 => uint256) internal reqIndex; // id => index + 1
    uint256[NC] internal gReqCount;

    mapping(uint256 => uint256) internal gStatCalls;
    mapping(uint256 => uint256) internal gStatRevenue;
    /// @notice Per model: settled requests (count, prices), from InferenceFulfilled events.
    mapping(uint256 => uint256) public requestCallsOf;
    mapping(uint256 => uint256) public requestRevenueOf;

    // ------------------------------------------------------------------ violations

    struct Violation {
        string what;
        uint256 a;
        uint256 b;
    }

    Violation[] internal violations;

    /// @notice Actions performed; the comparison of requests and channels with the contracts
    /// walks a window that moves with it (all of them every few actions), plus the newest.
    uint256 public step;
    uint256 internal constant WINDOW = 8;

    function _violate(string memory what, uint256 a, uint256 b) internal {
        if (violations.length < 20) violations.push(Violation(what, a, b));
    }

    function violationCount() external view returns (uint256) {
        return violations.length;
    }

    function violation(uint256 i) external view returns (string memory, uint256, uint256) {
        Violation storage v = violations[i];
        return (v.what, v.a, v.b);
    }

    // ------------------------------------------------------------------ deployment

    constructor() {
        token = new HubToken();
        registry = new ModelRegistry(PN);
        relayers = new RelayerRegistry(token, MIN_BOND, UNBOND);
        escrow = new InferenceEscrow(token, registry, relayers, treasuries[0], FEE_P0, FEE_R0, TIMEOUT, WD);
        gP = FEE_P0;
        gR = FEE_R0;
        gTreasury = treasuries[0];
        gMinCur = MIN_BOND;
        walletOwner = vm.addr(walletOwnerKey);
        wallet = new TestWallet(walletOwner);
        for (uint256 i; i < 3; ++i) {
            callerKeys[i] = 0xCA11E0 + i;
            callers[i] = vm.addr(callerKeys[i]);
        }
        callers[3] = address(wallet);
        attacker = callers[2];
        stranger = vm.addr(strangerKey);
        for (uint256 i; i < 2; ++i) {
            signerAddrs[i] = vm.addr(signerKeys[i]);
            relKeys[i] = 0xBEEF + i;
            rel[i] = vm.addr(relKeys[i]);
        }
        rel[2] = attacker;
        relKeys[2] = callerKeys[2];
        rel[3] = stranger;
        relKeys[3] = strangerKey;
        authors[0] = address(uint160(0xA070));
        authors[1] = address(uint160(0xA071));
        authors[2] = attacker;
    }

    // ------------------------------------------------------------------ accounts

    /// @notice Every account that can hold credit, a reservation, earnings or a bond.
    function accounts() public view returns (address[] memory all) {
        all = new address[](14);
        for (uint256 i; i < NC; ++i) {
            all[i] = callers[i];
        }
        all[4] = rel[0];
        all[5] = rel[1];
        all[6] = stranger;
        all[7] = authors[0];
        all[8] = authors[1];
        all[9] = treasuries[0];
        all[10] = treasuries[1];
        all[11] = walletOwner;
        all[12] = signerAddrs[0];
        all[13] = signerAddrs[1];
    }

    function callerAt(uint256 i) external view returns (address) {
        return callers[i];
    }

    function relayerAt(uint256 i) external view returns (address) {
        return rel[i];
    }

    function modelCount() public view returns (uint256) {
        return gModels.length;
    }

    function requestCount() external view returns (uint256) {
        return gReqs.length;
    }

    function requestAt(uint256 i) external view returns (uint256 id, uint8 status, uint8 endings) {
        GRequest storage r = gReqs[i];
        return (r.id, r.status, r.endings);
    }

    function channelCount() external view returns (uint256) {
        return channelIds.length;
    }

    function channelPaidSum(uint256 i) external view returns (uint256 paidSum, uint256 settlements) {
        ChannelId memory c = channelIds[i];
        GChannel storage ch = gCh[_chKey(c.caller, c.relayer, c.modelId)];
        return (ch.paidSum, ch.settlements);
    }

    /// @notice What the model says the escrow holds: credit + reservations + locked prices + earnings.
    function ghostHeld() external view returns (uint256 total) {
        address[] memory all = accounts();
        for (uint256 i; i < all.length; ++i) {
            total += gCredit[all[i]] + gEarn[all[i]];
        }
        for (uint256 c; c < NC; ++c) {
            for (uint256 r; r < NR; ++r) {
                total += gRes[c][r].amount;
            }
        }
        for (uint256 i; i < gReqs.length; ++i) {
            if (gReqs[i].status == 1) total += gReqs[i].price;
        }
    }

    function ghostBonds() external view returns (uint256 total) {
        for (uint256 i; i < 3; ++i) {
            total += gRel[i].bond;
        }
    }

    // ------------------------------------------------------------------ the model's rules

    function _now() internal view returns (uint64) {
        return uint64(block.timestamp);
    }

    function _feesNow() internal view returns (uint16 p, uint16 r) {
        if (gFeeAt != 0 && block.timestamp >= gFeeAt) return (gNP, gNR);
        return (gP, gR);
    }

    function _minBondNow() internal view returns (uint256) {
        if (gMinAt != 0 && block.timestamp >= gMinAt) return gMinNext;
        return gMinCur;
    }

    function _relSlot(address a) internal view returns (uint256) {
        for (uint256 i; i < NR; ++i) {
            if (rel[i] == a) return i;
        }
        return type(uint256).max;
    }

    function _active(address a) internal view returns (bool) {
        uint256 i = _relSlot(a);
        if (i >= 3) return false;
        GRelayer storage g = gRel[i];
        return g.registered && g.unbondAt == 0 && g.bond >= _minBondNow();
    }

    function _callerSlot(address a) internal view returns (uint256) {
        for (uint256 i; i < NC; ++i) {
            if (callers[i] == a) return i;
        }
        return type(uint256).max;
    }

    function _signerNow(uint256 c) internal view returns (address) {
        GSigner storage s = gSigner[c];
        if (s.nextAt != 0 && block.timestamp >= s.nextAt) return s.next;
        return s.current;
    }

    function _model(uint256 modelId) internal view returns (GModel storage) {
        return gModels[modelId - 1];
    }

    function _exists(uint256 modelId) internal view returns (bool) {
        return modelId >= 1 && modelId <= gModels.length;
    }

    function _payeesNow(uint256 modelId) internal view returns (address[] memory accounts_, uint16[] memory shares) {
        GModel storage m = _model(modelId);
        if (m.payeesAt != 0 && block.timestamp >= m.payeesAt) return (m.nxt, m.nxtShares);
        if (m.explicitPayees) return (m.cur, m.curShares);
        accounts_ = new address[](1);
        shares = new uint16[](1);
        accounts_[0] = m.owner;
        shares[0] = uint16(BPS);
    }

    /// @dev The registry's receipt price now: during a rise's notice the price before it.
    function _receiptPriceNow(uint256 modelId) internal view returns (uint256) {
        GModel storage m = _model(modelId);
        if (block.timestamp < m.noticeEnds && m.noticeFloor < m.price) return m.noticeFloor;
        return m.price;
    }

    /// @dev receiptTerms' floorPrice: the lowest receipt price the model ever had (its price
    /// at registration, then the least of every price it was set to; never above the price).
    function _floor(uint256 modelId) internal view returns (uint256) {
        return _model(modelId).lowest;
    }

    /// @dev The least channel (c, r, modelId), last settled at `settledAt` (0: never), pays per
    /// new call if settled now: the floor if the last rise's notice ended after `since`, else
    /// the price (at least 1); `since` is the last settlement, or for a first settlement the
    /// opening of the caller's reservation for the relayer (0 if it never had one). For a given
    /// channel it can only fall until the channel settles: `since` stays, the notice's end only
    /// moves later, the floor only down, and a rise past the receipt price starts a notice.
    function _perCall(uint256 c, uint256 r, uint256 settledAt, uint256 modelId) internal view returns (uint256 perCall) {
        GModel storage m = _model(modelId);
        uint256 since = settledAt != 0 ? settledAt : gRes[c][r].openedAt;
        perCall = since < m.noticeEnds ? m.lowest : m.price;
        if (perCall < 1) perCall = 1;
    }

    /// @dev Books `price` by the rounding rule at the fees in force, to the payees in force.
    function _book(address relayer, uint256 modelId, uint256 price) internal {
        (uint16 p, uint16 r) = _feesNow();
        uint256 protocolPart = price * p / BPS;
        uint256 relayerPart = price * r / BPS;
        uint256 payeePart = price - protocolPart - relayerPart;
        gEarn[gTreasury] += protocolPart;
        gEarn[relayer] += relayerPart;
        (address[] memory payees, uint16[] memory shares) = _payeesNow(modelId);
        uint256 rest = payeePart;
        for (uint256 j = 1; j < payees.length; ++j) {
            uint256 part = payeePart * shares[j] / BPS;
            rest -= part;
            gEarn[payees[j]] += part;
        }
        gEarn[payees[0]] += rest;
    }

    function _chKey(uint256 c, uint256 r, uint256 modelId) internal pure returns (bytes32) {
        return keccak256(abi.encode(c, r, modelId));
    }

    function _noteChannel(uint256 c, uint256 r, uint256 modelId) internal {
        bytes32 key = _chKey(c, r, modelId);
        if (!knownChannel[key]) {
            knownChannel[key] = true;
            channelIds.push(ChannelId(uint8(c), uint8(r), modelId));
        }
    }

    function _reqId(uint256 c, uint256 number) internal view returns (uint256) {
        return uint256(uint160(callers[c])) << 96 | number;
    }

    // ------------------------------------------------------------------ EIP-712, computed here

    function _domainSeparator() internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("ModelHub"),
                keccak256("1"),
                block.chainid,
                address(escrow)
            )
        );
    }

    function _receiptDigest(IInferenceEscrow.Receipt memory r) internal view returns (bytes32) {
        bytes32 structHash =
            keccak256(abi.encode(RECEIPT_TYPEHASH, r.caller, r.relayer, r.modelId, r.calls, r.amount, r.deadline));
        return keccak256(abi.encodePacked("\x19\x01", _domainSeparator(), structHash));
    }

    function _attDigest(IInferenceEscrow.Attestation memory a) internal view returns (bytes32) {
        bytes32 structHash =
            keccak256(abi.encode(ATTESTATION_TYPEHASH, a.requestId, a.modelId, a.version, a.inputHash, a.outputHash));
        return keccak256(abi.encodePacked("\x19\x01", _domainSeparator(), structHash));
    }

    function _signDigest(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    // ------------------------------------------------------------------ the model against the contracts

    /// @notice The first difference between the model and the contracts' views ("" if none).
    function mismatch() external view returns (string memory, uint256, uint256) {
        (string memory what, uint256 a, uint256 b) = _mismatchAccounts();
        if (bytes(what).length != 0) return (what, a, b);
        (what, a, b) = _mismatchRequests();
        if (bytes(what).length != 0) return (what, a, b);
        (what, a, b) = _mismatchChannels();
        if (bytes(what).length != 0) return (what, a, b);
        (what, a, b) = _mismatchModels();
        if (bytes(what).length != 0) return (what, a, b);
        return _mismatchTerms();
    }

    function _mismatchAccounts() internal view returns (string memory, uint256, uint256) {
        address[] memory all = accounts();
        for (uint256 i; i < all.length; ++i) {
            uint256 credit = escrow.balanceOf(all[i]);
            if (credit != gCredit[all[i]]) return ("free credit differs from the model", credit, gCredit[all[i]]);
            uint256 earned = escrow.earningsOf(all[i]);
            if (earned != gEarn[all[i]]) return ("earnings differ from the model", earned, gEarn[all[i]]);
        }
        for (uint256 c; c < NC; ++c) {
            for (uint256 r; r < NR; ++r) {
                (uint256 reserved, uint256 releasing, uint64 releaseAt) = escrow.reservation(callers[c], rel[r]);
                GReservation storage g = gRes[c][r];
                if (reserved != g.amount) return ("a reservation differs from the model", reserved, g.amount);
                if (releasing != g.releasing || releaseAt != g.releaseAt) {
                    return ("an announced release differs from the model", releasing, g.releasing);
                }
            }
            (address signer, address nextSigner, uint64 nextAt) = escrow.receiptSigner(callers[c]);
            GSigner storage s = gSigner[c];
            if (signer != _signerNow(c)) return ("the receipt signer in force differs from the model", uint160(signer), c);
            bool pending = s.nextAt != 0 && block.timestamp < s.nextAt;
            if (nextAt != (pending ? s.nextAt : 0) || nextSigner != (pending ? s.next : address(0))) {
                return ("a pending receipt signer change differs from the model", nextAt, s.nextAt);
            }
        }
        for (uint256 i; i < 3; ++i) {
            (, uint256 bond, bool active, uint64 unbondAt) = relayers.relayerInfo(rel[i]);
            if (bond != gRel[i].bond || unbondAt != gRel[i].unbondAt) return ("a bond differs from the model", bond, gRel[i].bond);
            if (active != _active(rel[i])) return ("isActive differs from the model", i, active ? 1 : 0);
        }
        return ("", 0, 0);
    }

    /// @dev The indexes the comparison walks at this step: a window of WINDOW that moves by
    /// WINDOW each step, and the newest WINDOW / 2.
    function _inWindow(uint256 i, uint256 n) internal view returns (bool) {
        if (n <= 2 * WINDOW || i + WINDOW / 2 >= n) return true;
        uint256 start = step * WINDOW % n;
        uint256 offset = (i + n - start) % n;
        return offset < WINDOW;
    }

    function _mismatchRequests() internal view returns (string memory, uint256, uint256) {
        uint256 n = gReqs.length;
        for (uint256 i; i < n; ++i) {
            if (!_inWindow(i, n)) continue;
            GRequest storage g = gReqs[i];
            (address caller, uint256 modelId, uint32 version, uint256 price, bytes32 inputHash, uint64 deadline, uint8 status)
            = escrow.getRequest(g.id);
            if (status != g.status) return ("a request's status differs from the model", g.id, status);
            if (caller != callers[g.caller]) return ("a request's caller differs from the model", g.id, uint160(caller));
            bool pending = g.status == 1;
            if (
                modelId != (pending ? g.modelId : 0) || version != (pending ? g.version : 0)
                    || price != (pending ? g.price : 0) || inputHash != (pending ? g.inputHash : bytes32(0))
                    || deadline != (pending ? g.deadline : 0)
            ) return ("a request's terms differ from the model", g.id, price);
            if (escrow.designatedRelayer(g.id) != (pending ? g.relayer : address(0))) {
                return ("a request's designated relayer differs from the model", g.id, 0);
            }
        }
        for (uint256 c; c < NC; ++c) {
            if (escrow.nextRequestId(callers[c]) != _reqId(c, gReqCount[c] + 1)) {
                return ("nextRequestId differs from the model", c, gReqCount[c]);
            }
        }
        return ("", 0, 0);
    }

    function _mismatchChannels() internal view returns (string memory, uint256, uint256) {
        uint256 n = channelIds.length;
        for (uint256 i; i < n; ++i) {
            if (!_inWindow(i, n)) continue;
            ChannelId memory id = channelIds[i];
            GChannel storage g = gCh[_chKey(id.caller, id.relayer, id.modelId)];
            (uint256 calls, uint256 amount) = escrow.channel(callers[id.caller], rel[id.relayer], id.modelId);
            if (calls != g.calls || amount != g.amount) return ("a channel's settled totals differ from the model", calls, g.calls);
            uint256 price = escrow.channelPrice(callers[id.caller], rel[id.relayer], id.modelId);
            uint256 expected = _exists(id.modelId) ? _perCall(id.caller, id.relayer, g.settledAt, id.modelId) : 0;
            if (price != expected) return ("channelPrice differs from the model", price, expected);
        }
        return ("", 0, 0);
    }

    /// @notice The prices the model says pending requests lock, read from the escrow.
    function lockedByPending() external view returns (uint256 total) {
        for (uint256 i; i < gReqs.length; ++i) {
            if (gReqs[i].status != 1) continue;
            (,,, uint256 price,,, uint8 status) = escrow.getRequest(gReqs[i].id);
            if (status == 1) total += price;
        }
    }

    /// @notice Requests end at most once, with the event of their state; each channel was paid
    /// exactly its settled amount, by increases; every channel call paid at least 1 base unit;
    /// modelStats = settled requests + channel totals, per model ("" if all hold).
    function bookkeepingMismatch() external view returns (string memory, uint256, uint256) {
        for (uint256 i; i < gReqs.length; ++i) {
            GRequest storage g = gReqs[i];
            if (g.endings > 1) return ("a request ended more than once", g.id, g.endings);
            if ((g.status == 1) != (g.endings == 0)) return ("a request's state and its events disagree", g.id, g.status);
        }
        uint256 models = gModels.length;
        uint256[] memory calls = new uint256[](models + 2);
        uint256[] memory revenue = new uint256[](models + 2);
        for (uint256 i; i < channelIds.length; ++i) {
            ChannelId memory id = channelIds[i];
            GChannel storage g = gCh[_chKey(id.caller, id.relayer, id.modelId)];
            if (g.paidSum != g.amount) return ("a channel's payments do not sum to its settled amount", g.paidSum, g.amount);
            if (g.amount < g.calls) return ("a channel counted calls nobody paid 1 base unit for", g.calls, g.amount);
            calls[id.modelId] += g.calls;
            revenue[id.modelId] += g.amount;
        }
        for (uint256 m = 1; m <= models + 1; ++m) {
            (uint256 statCalls, uint256 statRevenue) = escrow.modelStats(m);
            if (statCalls != calls[m] + requestCallsOf[m]) {
                return ("modelStats calls != settled requests + channel calls", statCalls, calls[m] + requestCallsOf[m]);
            }
            if (statRevenue != revenue[m] + requestRevenueOf[m]) {
                return ("modelStats revenue != settled request prices + channel amounts", statRevenue, revenue[m] + requestRevenueOf[m]);
            }
        }
        return ("", 0, 0);
    }

    function _mismatchModels() internal view returns (string memory, uint256, uint256) {
        if (registry.modelCount() != gModels.length) return ("modelCount differs", registry.modelCount(), gModels.length);
        for (uint256 id = 1; id <= gModels.length; ++id) {
            GModel storage m = _model(id);
            (address owner, uint256 price, uint32 latest, bool active,,) = registry.getModel(id);
            if (owner != m.owner || price != m.price || latest != m.latest || active != m.active) {
                return ("a model's owner, price, version or flag differs from the model", id, price);
            }
            (uint256 calls, uint256 revenue) = escrow.modelStats(id);
            if (calls != gStatCalls[id] || revenue != gStatRevenue[id]) return ("modelStats differ from the model", calls, gStatCalls[id]);
            (bool exists, uint256 tPrice, uint256 floor, uint64 endsAt, address[] memory payees, uint16[] memory shares) =
                registry.receiptTerms(id);
            if (!exists || tPrice != m.price || floor != _floor(id) || endsAt != m.noticeEnds) {
                return ("receiptTerms differ from the model", floor, _floor(id));
            }
            (address[] memory gPayees, uint16[] memory gShares) = _payeesNow(id);
            if (!_samePayees(payees, shares, gPayees, gShares)) return ("receiptTerms' payees differ from the model", id, payees.length);
            (payees, shares) = registry.getPayees(id);
            if (!_samePayees(payees, shares, gPayees, gShares)) return ("getPayees differs from the model", id, payees.length);
            (uint256 noticePrice, uint64 noticeEnds) = registry.priceNotice(id);
            bool running = block.timestamp < m.noticeEnds && m.noticeFloor < m.price;
            if (noticePrice != (running ? m.noticeFloor : 0) || noticeEnds != (running ? m.noticeEnds : 0)) {
                return ("priceNotice differs from the model", noticePrice, m.noticeFloor);
            }
            uint64 effectiveAt;
            (payees, shares, effectiveAt) = registry.pendingPayees(id);
            bool pendingPayees = m.payeesAt != 0 && block.timestamp < m.payeesAt;
            if (effectiveAt != (pendingPayees ? m.payeesAt : 0)) return ("pendingPayees' time differs from the model", effectiveAt, m.payeesAt);
            if (pendingPayees && !_samePayees(payees, shares, m.nxt, m.nxtShares)) {
                return ("pendingPayees differ from the model", id, payees.length);
            }
        }
        (bool exists,,,,,) = registry.receiptTerms(gModels.length + 1);
        if (exists) return ("receiptTerms says an unknown model exists", gModels.length + 1, 0);
        return ("", 0, 0);
    }

    function _mismatchTerms() internal view returns (string memory, uint256, uint256) {
        (uint16 p, uint16 r) = _feesNow();
        if (escrow.protocolFeeBps() != p) return ("protocolFeeBps in force differs from the model", escrow.protocolFeeBps(), p);
        if (escrow.relayerFeeBps() != r) return ("relayerFeeBps in force differs from the model", escrow.relayerFeeBps(), r);
        (uint16 np, uint16 nr, uint64 feeAt) = escrow.pendingFees();
        bool pending = gFeeAt != 0 && block.timestamp < gFeeAt;
        if (feeAt != (pending ? gFeeAt : 0) || np != (pending ? gNP : 0) || nr != (pending ? gNR : 0)) {
            return ("pendingFees differ from the model", feeAt, gFeeAt);
        }
        if (escrow.treasury() != gTreasury) return ("the treasury differs from the model", 0, 0);
        if (escrow.paused() != gPaused) return ("the pause flag differs from the model", 0, 0);
        if (relayers.minBond() != _minBondNow()) return ("minBond in force differs from the model", relayers.minBond(), _minBondNow());
        (uint256 nextMin, uint64 minAt) = relayers.pendingMinBond();
        bool minPending = gMinAt != 0 && block.timestamp < gMinAt;
        if (minAt != (minPending ? gMinAt : 0) || nextMin != (minPending ? gMinNext : 0)) {
            return ("pendingMinBond differs from the model", minAt, gMinAt);
        }
        return ("", 0, 0);
    }

    function _samePayees(address[] memory a, uint16[] memory sa, address[] memory b, uint16[] memory sb)
        internal
        pure
        returns (bool)
    {
        if (a.length != b.length || sa.length != sb.length || a.length != sa.length) return false;
        for (uint256 i; i < a.length; ++i) {
            if (a[i] != b[i] || sa[i] != sb[i]) return false;
        }
        return true;
    }
}
