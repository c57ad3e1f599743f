// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {WithVm, Vm} from "./Vm.sol";
import {HubToken} from "../../contracts/HubToken.sol";
import {ModelRegistry} from "../../contracts/ModelRegistry.sol";
import {RelayerRegistry} from "../../contracts/RelayerRegistry.sol";
import {InferenceEscrow} from "../../contracts/InferenceEscrow.sol";

/// @title The actor forge's invariant fuzzer drives
/// @notice Deploys a hub (it is the owner of all three contracts) and exposes bounded actions of
/// callers, model authors, relayers and the owner. It keeps ghost books that only the contracts'
/// events and state feed, and counts every broken per-call rule in `violations`, which the
/// invariant test requires to stay empty.
///
/// Roles are disjoint (callers, authors = owners and payees, relayers, treasury), so that each
/// part of a settlement can be checked on its own against the rounding rule.
///
/// Off-chain calls: callers have keys and sign receipts (vm.sign) over channels (caller, relayer,
/// model) that `settleReceipts` settles in batches of valid and invalid items; two of the three
/// callers turn on `enableReceipts` and withdraw through `announceWithdrawal`, the third keeps
/// the one-step `withdraw`.
contract EscrowHandler is WithVm {
    uint256 internal constant BPS = 10_000;
    uint256 internal constant MAX_PRICE = type(uint128).max;
    uint256 internal constant MIN_BOND = 100e18;
    uint64 internal constant UNBOND_DELAY = 1 days;
    uint64 internal constant TIMEOUT = 600;

    bytes32 internal constant FULFILLED_TOPIC = keccak256("InferenceFulfilled(uint256,address,bytes32)");
    bytes32 internal constant REJECTED_TOPIC = keccak256("InferenceRejected(uint256,address,uint8)");
    bytes32 internal constant REFUNDED_TOPIC = keccak256("InferenceRefunded(uint256)");
    bytes32 internal constant RECEIPT_SETTLED_TOPIC =
        keccak256("ReceiptSettled(address,address,uint256,uint256,uint256,uint256)");
    bytes32 internal constant RECEIPT_SKIPPED_TOPIC = keccak256("ReceiptSkipped(address,address,uint256,uint256,uint8)");
    uint64 internal constant WITHDRAWAL_DELAY = 1 hours;
    // InferenceEscrow.ReceiptSkipReason
    uint8 internal constant NOT_NEWER = 1;
    uint8 internal constant EXPIRED = 2;
    uint8 internal constant INVALID_SIGNATURE = 3;
    uint8 internal constant NOT_ACTIVE_RELAYER = 4;
    uint8 internal constant UNKNOWN_MODEL = 5;
    uint8 internal constant UNDERPRICED = 6;

    HubToken public token;
    ModelRegistry public registry;
    RelayerRegistry public relayers;
    InferenceEscrow public escrow;
    address public treasury = address(0x7EA5);

    address[3] internal callers;
    uint256[3] internal callerKeys;
    address[3] internal authors;
    uint256[3] internal relayerKeys;
    address[3] internal relayerAddrs;
    address internal stranger; // signs without being a relayer
    uint256 internal strangerKey = 0x5757;

    struct Tracked {
        address caller;
        uint256 modelId;
        uint32 version;
        uint256 price;
        bytes32 inputHash;
        uint64 deadline;
    }

    uint256[] public requestIds;
    mapping(uint256 => Tracked) public tracked;
    /// @notice Terminal events seen per request (fulfilled, rejected or refunded): at most one.
    mapping(uint256 => uint256) public endings;
    /// @notice Settled calls and their prices, from InferenceFulfilled events.
    uint256 public settledCalls;
    uint256 public settledRevenue;
    uint256[] public modelIds;

    /// @notice Settled calls and their prices per model, from InferenceFulfilled events.
    mapping(uint256 => uint256) public requestCallsOf;
    mapping(uint256 => uint256) public requestRevenueOf;

    /// @notice Every channel a receipt was built for (settled or not).
    struct ChannelId {
        address caller;
        address relayer;
        uint256 modelId;
    }

    ChannelId[] public channelIds;
    mapping(bytes32 => bool) internal knownChannel;
    /// @notice Each channel's totals as its ReceiptSettled events left them.
    mapping(bytes32 => uint256) public ghostChannelCalls;
    mapping(bytes32 => uint256) public ghostChannelAmount;
    /// @notice Every token a caller ever deposited.
    mapping(address => uint256) public deposited;
    uint256 public receiptsSettled;

    /// @notice Every broken per-call rule, with what broke it.
    string[] public violations;
    mapping(bytes32 => uint256) public calls;

    constructor() {
        token = new HubToken();
        registry = new ModelRegistry(1 hours);
        relayers = new RelayerRegistry(token, MIN_BOND, UNBOND_DELAY);
        escrow = new InferenceEscrow(token, registry, relayers, treasury, 500, 1_000, TIMEOUT, 1 hours);
        for (uint256 i; i < 3; ++i) {
            callerKeys[i] = 0xCA11E0 + i;
            callers[i] = vm.addr(callerKeys[i]);
            authors[i] = address(uint160(0xA07 + i));
            relayerKeys[i] = 0xBEEF + i;
            relayerAddrs[i] = vm.addr(relayerKeys[i]);
        }
        stranger = vm.addr(strangerKey);
        // Two bonded relayers and one model to start from.
        for (uint256 i; i < 2; ++i) {
            _bond(relayerAddrs[i], MIN_BOND);
        }
        vm.prank(authors[0]);
        modelIds.push(registry.registerModel("m", keccak256("m0"), "", 1e18 + 7));
    }

    // ------------------------------------------------------------------ views for the invariants

    function requestCount() external view returns (uint256) {
        return requestIds.length;
    }

    function violationCount() external view returns (uint256) {
        return violations.length;
    }

    function modelCount() external view returns (uint256) {
        return modelIds.length;
    }

    function channelCount() external view returns (uint256) {
        return channelIds.length;
    }

    function callerAt(uint256 i) external view returns (address) {
        return callers[i];
    }

    /// @notice Every account that can hold credit, earnings or a bond.
    function accounts() public view returns (address[] memory all) {
        all = new address[](11);
        for (uint256 i; i < 3; ++i) {
            all[i] = callers[i];
            all[3 + i] = authors[i];
            all[6 + i] = relayerAddrs[i];
        }
        all[9] = treasury;
        all[10] = stranger;
    }

    // ------------------------------------------------------------------ models

    function registerModel(uint256 authorSeed, uint256 price) external {
        price = _price(price);
        vm.prank(authors[authorSeed % 3]);
        modelIds.push(registry.registerModel("m", keccak256(abi.encode(modelIds.length)), "", price));
        _count("registerModel");
    }

    function setPrice(uint256 modelSeed, uint256 price) external {
        uint256 modelId = _model(modelSeed);
        (address owner,,,,,) = registry.getModel(modelId);
        (, uint256 floor,,) = registry.receiptTerms(modelId);
        price = _price(price);
        vm.prank(owner);
        registry.setPrice(modelId, price);
        // A rise keeps the receipt price in force before it; a cut (or no change) applies at once.
        (, uint256 receiptPrice,,) = registry.receiptTerms(modelId);
        if (receiptPrice != (price > floor ? floor : price)) _violate("setPrice left a wrong receipt price");
        _count("setPrice");
    }

    function setPayees(uint256 modelSeed, uint256 seed) external {
        uint256 modelId = _model(modelSeed);
        (address owner,,,,,) = registry.getModel(modelId);
        uint256 n = 1 + seed % 3;
        address[] memory payees = new address[](n);
        uint16[] memory shares = new uint16[](n);
        uint256 left = BPS;
        for (uint256 i; i < n; ++i) {
            payees[i] = authors[(seed / 3 + i) % 3];
            uint256 share = i == n - 1 ? left : 1 + (seed >> (16 * (i + 1))) % (left - (n - 1 - i));
            shares[i] = uint16(share);
            left -= share;
        }
        vm.prank(owner);
        registry.setPayees(modelId, payees, shares);
        _count("setPayees");
    }

    /// @dev Switches a model off one time in four, on otherwise.
    function setActive(uint256 modelSeed, uint8 seed) external {
        bool active = seed % 4 != 0;
        uint256 modelId = _model(modelSeed);
        (address owner,,,,,) = registry.getModel(modelId);
        vm.prank(owner);
        registry.setActive(modelId, active);
    }

    // ------------------------------------------------------------------ credit

    function deposit(uint256 callerSeed, uint256 amount) public {
        address caller = callers[callerSeed % 3];
        amount = 1 + amount % (1 << 130);
        _deposit(caller, amount);
        _count("deposit");
    }

    function withdraw(uint256 callerSeed, uint256 amount) external {
        address caller = callers[callerSeed % 3];
        uint256 credit = escrow.balanceOf(caller);
        if (credit == 0) return;
        amount = 1 + amount % credit;
        uint256 before = token.balanceOf(caller);
        (bool enabled, uint256 announced, uint64 readyAt) = escrow.withdrawalNotice(caller);
        if (!enabled) {
            vm.prank(caller);
            escrow.withdraw(amount);
        } else {
            bool allowed = amount <= announced && block.timestamp >= readyAt;
            vm.prank(caller);
            try escrow.withdraw(amount) {
                if (!allowed) _violate("a withdrawal skipped the announcement or the delay");
                (, uint256 left,) = escrow.withdrawalNotice(caller);
                if (left != announced - amount) _violate("a withdrawal did not use up its announcement");
            } catch {
                if (allowed) _violate("an announced, ready withdrawal was refused");
                if (escrow.balanceOf(caller) != credit || token.balanceOf(caller) != before) {
                    _violate("a refused withdrawal moved money");
                }
                _count("withdraw refused");
                return;
            }
        }
        if (token.balanceOf(caller) != before + amount) _violate("withdraw paid a different amount");
        if (escrow.balanceOf(caller) != credit - amount) _violate("withdraw debited a different amount");
        _count("withdraw");
    }

    function withdrawEarnings(uint256 accountSeed) external {
        address account = accounts()[accountSeed % 11];
        uint256 earned = escrow.earningsOf(account);
        if (earned == 0) return;
        uint256 before = token.balanceOf(account);
        vm.prank(account);
        escrow.withdrawEarnings();
        if (token.balanceOf(account) != before + earned || escrow.earningsOf(account) != 0) {
            _violate("withdrawEarnings paid a different amount");
        }
        _count("withdrawEarnings");
    }

    // ------------------------------------------------------------------ calls

    function request(uint256 callerSeed, uint256 modelSeed, uint256 maxPriceSeed) external {
        bool fund = maxPriceSeed % 7 != 0;
        address caller = callers[callerSeed % 3];
        uint256 modelId = _model(modelSeed);
        (, uint256 price,,,,) = registry.getModel(modelId);
        uint256 credit = escrow.balanceOf(caller);
        if (fund && credit < price) _deposit(caller, price - credit);
        uint256 maxPrice = maxPriceSeed % 8 == 0 ? (price == 0 ? 0 : price - 1) : price + maxPriceSeed % 3;
        bytes memory input = abi.encodePacked(maxPriceSeed);
        credit = escrow.balanceOf(caller);
        vm.prank(caller);
        try escrow.requestInference(modelId, 0, input, maxPrice) returns (uint256 id) {
            if (escrow.balanceOf(caller) != credit - price) _violate("a request locked a different amount");
            (,, uint32 version,,, uint64 deadline,) = escrow.getRequest(id);
            if (tracked[id].caller != address(0)) _violate("a request id was reused");
            tracked[id] = Tracked(caller, modelId, version, price, keccak256(input), deadline);
            requestIds.push(id);
            _count("request");
        } catch {
            _count("request refused");
        }
    }

    /// @param kind 0-6 a valid attestation, 7 a mismatched one, 8 signed by a non-relayer,
    /// 9 an already ended request (a replay).
    function fulfill(uint256 requestSeed, uint256 relayerSeed, uint8 kind) external {
        if (requestIds.length == 0) return;
        kind = kind % 10;
        uint256 id = kind == 9 ? _endedOr(requestSeed) : _pendingOr(requestSeed);
        Tracked memory t = tracked[id];
        uint256 key = kind == 8 ? strangerKey : _relayerKey(relayerSeed);
        InferenceEscrow.Attestation memory att =
            InferenceEscrow.Attestation(id, t.modelId, t.version, kind == 7 ? bytes32(0) : t.inputHash, keccak256("out"));
        bytes memory sig = _sign(key, att);

        address relayer = vm.addr(key);
        (address[] memory payees, uint16[] memory shares) = registry.getPayees(t.modelId);
        uint256[] memory before = _earnings();
        (,,,,,, uint8 statusBefore) = escrow.getRequest(id);

        vm.recordLogs();
        try escrow.fulfill(att, sig) {
            _countEndings();
            if (statusBefore != 1) _violate("an ended request settled again");
            _checkSplit(t.price, relayer, payees, shares, before);
            _count("fulfill");
        } catch (bytes memory reason) {
            _countEndings();
            // An ended request is refused because it ended, whatever else is wrong with the item.
            if (statusBefore != 1 && bytes4(reason) != InferenceEscrow.InferenceEscrow_NotPending.selector) {
                _violate("an ended request was refused for another reason than NotPending");
            }
            _count("fulfill refused");
        }
    }

    /// @notice Up to four items, valid or not, with duplicates: the paid total must be the sum
    /// of the prices of the requests that settled, each at most once.
    function fulfillBatch(uint256 seed) external {
        if (requestIds.length == 0) return;
        uint256 n = 1 + seed % 4;
        InferenceEscrow.Attestation[] memory atts = new InferenceEscrow.Attestation[](n);
        bytes[] memory sigs = new bytes[](n);
        for (uint256 i; i < n; ++i) {
            uint256 s = uint256(keccak256(abi.encode(seed, i)));
            uint256 id = s % 5 == 0 ? _endedOr(s >> 8) : _pendingOr(s >> 8);
            Tracked memory t = tracked[id];
            atts[i] = InferenceEscrow.Attestation(id, t.modelId, t.version, t.inputHash, keccak256("out"));
            sigs[i] = _sign(s % 7 == 0 ? strangerKey : _relayerKey(s >> 4), atts[i]);
        }
        if (seed % 3 == 0) {
            atts[n - 1] = atts[0]; // the same item twice
            sigs[n - 1] = sigs[0];
        }
        uint256 total = _sum(_earnings());
        vm.recordLogs();
        escrow.fulfillBatch(atts, sigs);
        uint256 settledBefore = settledRevenue;
        _countEndings();
        if (_sum(_earnings()) - total != settledRevenue - settledBefore) {
            _violate("a batch released a different total than the prices it settled");
        }
        _count("fulfillBatch");
    }

    function reject(uint256 requestSeed, uint256 relayerSeed, uint8 reason) external {
        if (requestIds.length == 0) return;
        uint256 id = _pendingOr(requestSeed);
        _returning(id, relayerAddrs[relayerSeed % 3], abi.encodeCall(escrow.reject, (id, uint8(1 + reason % 4))));
    }

    function refund(uint256 requestSeed, bool late) external {
        if (requestIds.length == 0) return;
        uint256 id = _pendingOr(requestSeed);
        if (late && tracked[id].deadline >= block.timestamp) vm.warp(tracked[id].deadline + 1);
        _returning(id, callers[requestSeed % 3], abi.encodeCall(escrow.refund, (id)));
    }

    /// @dev Mostly a few seconds; one time in eight up to two request timeouts.
    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + (seconds_ % 8 == 0 ? seconds_ % (2 * TIMEOUT) : seconds_ % 60));
    }

    // ------------------------------------------------------------------ receipts (off-chain calls)

    /// @notice Up to four receipts of random channels, sometimes the same item twice. Per item,
    /// `kind` 0-5: the channel's next totals (1-3 new calls at the receipt price, sometimes a
    /// little over it; funded three times in four); 6: a replay of the settled totals; 7: one wei
    /// short of the receipt price; 8: signed by a key that is not the caller's; 9: past its
    /// deadline. Each item must end in exactly one event with an outcome its kind allows, each
    /// settled item must pay exactly its channel's increase (at least the receipt price per new
    /// call) out of its caller's credit, split by the rounding rule, and nothing else may move.
    function settleReceipts(uint256 seed) external {
        uint256 n = 1 + seed % 4;
        InferenceEscrow.Receipt[] memory receipts = new InferenceEscrow.Receipt[](n);
        bytes[] memory sigs = new bytes[](n);
        uint8[] memory kinds = new uint8[](n);
        for (uint256 i; i < n; ++i) {
            (receipts[i], sigs[i], kinds[i]) = _buildReceipt(uint256(keccak256(abi.encode(seed, i))));
        }
        if (seed % 5 == 0 && n > 1) {
            receipts[n - 1] = receipts[0]; // the same item twice
            sigs[n - 1] = sigs[0];
            kinds[n - 1] = kinds[0];
        }

        uint256[] memory earningsBefore = _earnings();
        uint256[3] memory creditBefore;
        for (uint256 i; i < 3; ++i) {
            creditBefore[i] = escrow.balanceOf(callers[i]);
        }
        vm.recordLogs();
        escrow.settleReceipts(receipts, sigs);
        Vm.Log[] memory logs = vm.getRecordedLogs();

        uint256[] memory expected = new uint256[](earningsBefore.length);
        uint256[3] memory paidBy;
        uint256 item;
        for (uint256 l; l < logs.length; ++l) {
            if (logs[l].emitter != address(escrow)) continue;
            bytes32 topic = logs[l].topics[0];
            if (topic != RECEIPT_SETTLED_TOPIC && topic != RECEIPT_SKIPPED_TOPIC) continue;
            if (item >= n) {
                _violate("more receipt events than items");
                break;
            }
            InferenceEscrow.Receipt memory r = receipts[item];
            if (
                logs[l].topics[1] != bytes32(uint256(uint160(r.caller)))
                    || logs[l].topics[2] != bytes32(uint256(uint160(r.relayer))) || logs[l].topics[3] != bytes32(r.modelId)
            ) _violate("a receipt event names another item than the one in its place");
            if (topic == RECEIPT_SETTLED_TOPIC) {
                (uint256 totalCalls, uint256 totalAmount, uint256 paid) = abi.decode(logs[l].data, (uint256, uint256, uint256));
                if (totalCalls != r.calls || totalAmount != r.amount) _violate("ReceiptSettled carries other totals than the receipt");
                _onReceiptSettled(r, kinds[item], paid, expected);
                paidBy[_callerIndex(r.caller)] += paid;
            } else {
                (uint256 totalCalls, uint8 reason) = abi.decode(logs[l].data, (uint256, uint8));
                if (totalCalls != r.calls) _violate("ReceiptSkipped carries other calls than the receipt");
                _checkSkipReason(kinds[item], reason);
            }
            ++item;
        }
        if (item != n) _violate("a receipt ended in no event");

        uint256[] memory earningsAfter = _earnings();
        for (uint256 i; i < earningsAfter.length; ++i) {
            if (earningsAfter[i] - earningsBefore[i] != expected[i]) {
                _violate("a receipt settlement part does not follow the rounding rule");
            }
        }
        for (uint256 i; i < 3; ++i) {
            if (creditBefore[i] - escrow.balanceOf(callers[i]) != paidBy[i]) {
                _violate("a caller's credit moved by other than what its receipts paid");
            }
        }
        for (uint256 i; i < n; ++i) {
            bytes32 key = _channelKey(receipts[i].caller, receipts[i].relayer, receipts[i].modelId);
            (uint256 chCalls, uint256 chAmount) = escrow.channel(receipts[i].caller, receipts[i].relayer, receipts[i].modelId);
            if (chCalls != ghostChannelCalls[key] || chAmount != ghostChannelAmount[key]) {
                _violate("channel() differs from the channel's settled receipts");
            }
        }
        _count("settleReceipts");
    }

    /// @dev Callers 0 and 1 sign receipts and turn on the withdrawal delay; caller 2 never does.
    function enableReceipts(uint256 callerSeed) external {
        address caller = callers[callerSeed % 2];
        vm.prank(caller);
        escrow.enableReceipts();
        (bool enabled,,) = escrow.withdrawalNotice(caller);
        if (!enabled) _violate("enableReceipts did not enable receipts");
        _count("enableReceipts");
    }

    /// @dev One time in five announces 0 (a cancellation), else up to a little over the credit.
    function announceWithdrawal(uint256 callerSeed, uint256 amount) external {
        address caller = callers[callerSeed % 3];
        (bool enabled,,) = escrow.withdrawalNotice(caller);
        amount = amount % 5 == 0 ? 0 : amount % (escrow.balanceOf(caller) + 2);
        vm.prank(caller);
        try escrow.announceWithdrawal(amount) {
            if (!enabled) _violate("an account without receipts announced a withdrawal");
            (, uint256 announced, uint64 readyAt) = escrow.withdrawalNotice(caller);
            if (announced != amount || readyAt != (amount == 0 ? 0 : block.timestamp + WITHDRAWAL_DELAY)) {
                _violate("announceWithdrawal stored another amount or time");
            }
            _count("announceWithdrawal");
        } catch (bytes memory reason) {
            if (enabled || bytes4(reason) != InferenceEscrow.InferenceEscrow_NoWithdrawalDelay.selector) {
                _violate("announceWithdrawal was refused for the wrong reason");
            }
        }
    }

    /// @dev Withdraws what was announced (at most the credit); `wait`: first jump to readyAt.
    function withdrawAnnounced(uint256 callerSeed, bool wait) external {
        address caller = callers[callerSeed % 2];
        (bool enabled, uint256 announced, uint64 readyAt) = escrow.withdrawalNotice(caller);
        uint256 credit = escrow.balanceOf(caller);
        if (!enabled || announced == 0 || credit == 0) return;
        if (wait && block.timestamp < readyAt) vm.warp(readyAt);
        uint256 amount = announced < credit ? announced : credit;
        uint256 before = token.balanceOf(caller);
        vm.prank(caller);
        try escrow.withdraw(amount) {
            if (block.timestamp < readyAt) _violate("a withdrawal went through before readyAt");
            if (token.balanceOf(caller) != before + amount || escrow.balanceOf(caller) != credit - amount) {
                _violate("an announced withdrawal paid a different amount");
            }
            (, uint256 left,) = escrow.withdrawalNotice(caller);
            if (left != announced - amount) _violate("a withdrawal did not use up its announcement");
            _count("withdrawAnnounced");
        } catch (bytes memory reason) {
            if (block.timestamp >= readyAt || bytes4(reason) != InferenceEscrow.InferenceEscrow_WithdrawalNotReady.selector) {
                _violate("an announced withdrawal was refused for the wrong reason");
            }
            _count("withdrawAnnounced early");
        }
    }

    // ------------------------------------------------------------------ relayers and owner

    function bondRelayer(uint256 relayerSeed, uint256 extra) external {
        address relayer = relayerAddrs[relayerSeed % 3];
        (,,, uint64 unbondAt) = relayers.relayerInfo(relayer);
        (, uint256 bond,,) = relayers.relayerInfo(relayer);
        if (bond == 0) {
            _bond(relayer, MIN_BOND + extra % 1e24);
        } else if (unbondAt == 0) {
            uint256 amount = 1 + extra % 1e24;
            token.mint(relayer, amount);
            vm.startPrank(relayer);
            token.approve(address(relayers), amount);
            relayers.addBond(amount);
            vm.stopPrank();
        }
        _count("bond");
    }

    /// @dev Begins leaving one time in four (an unbonding relayer cannot serve), or takes the
    /// bond back once the delay has passed (`wait`: jump there).
    function unbondRelayer(uint256 relayerSeed, bool wait) external {
        address relayer = relayerAddrs[relayerSeed % 3];
        (, uint256 bond,, uint64 unbondAt) = relayers.relayerInfo(relayer);
        if (bond == 0) return;
        if (unbondAt == 0) {
            if (relayerSeed % 4 != 0) return;
            vm.prank(relayer);
            relayers.beginUnbond();
            _count("beginUnbond");
            return;
        }
        if (wait && block.timestamp < unbondAt) vm.warp(unbondAt);
        if (block.timestamp < unbondAt) return;
        uint256 before = token.balanceOf(relayer);
        vm.prank(relayer);
        relayers.withdrawBond();
        if (token.balanceOf(relayer) != before + bond) _violate("withdrawBond paid a different amount");
        _count("withdrawBond");
    }

    function setFees(uint16 protocolBps, uint16 relayerBps) external {
        escrow.setProtocolFeeBps(protocolBps % 1_001);
        escrow.setRelayerFeeBps(relayerBps % 3_001);
    }

    /// @dev Pauses one time in eight, unpauses otherwise (a paused escrow takes no requests).
    function setPaused(uint8 seed) external {
        bool pause = seed % 8 == 0;
        if (pause == escrow.paused()) return;
        if (pause) escrow.pause();
        else escrow.unpause();
    }

    // ------------------------------------------------------------------ internal

    function _returning(uint256 id, address sender, bytes memory callData) private {
        Tracked memory t = tracked[id];
        (,,,,,, uint8 statusBefore) = escrow.getRequest(id);
        uint256 credit = escrow.balanceOf(t.caller);
        vm.recordLogs();
        vm.prank(sender);
        (bool ok,) = address(escrow).call(callData);
        _countEndings();
        if (ok) {
            if (statusBefore != 1) _violate("an ended request was returned again");
            if (escrow.balanceOf(t.caller) != credit + t.price) _violate("a refund returned a different amount than the locked price");
            _count("refund/reject");
        } else if (escrow.balanceOf(t.caller) != credit) {
            _violate("a refused refund changed the credit");
        }
    }

    /// @dev Each part of one settlement against the rule: fee parts round down, the payees take
    /// the rest, payee i > 0 gets its share rounded down, the first payee the remainder.
    function _checkSplit(
        uint256 price,
        address relayer,
        address[] memory payees,
        uint16[] memory shares,
        uint256[] memory before
    ) private {
        uint256[] memory afterwards = _earnings();
        uint256[] memory expected = new uint256[](afterwards.length);
        _addSplit(expected, price, relayer, payees, shares);
        uint256 paid;
        for (uint256 i; i < afterwards.length; ++i) {
            uint256 delta = afterwards[i] - before[i];
            paid += delta;
            if (delta != expected[i]) _violate("a settlement part does not follow the rounding rule");
        }
        if (paid != price) _violate("a settlement's parts do not sum to its price");
    }

    /// @dev Adds the parts of a settlement of `price` by the rounding rule to `into` (indexed as
    /// `accounts()`), at the escrow's current fees.
    function _addSplit(
        uint256[] memory into,
        uint256 price,
        address relayer,
        address[] memory payees,
        uint16[] memory shares
    ) private view {
        uint256 protocolPart = price * escrow.protocolFeeBps() / BPS;
        uint256 relayerPart = price * escrow.relayerFeeBps() / BPS;
        uint256 payeePart = price - protocolPart - relayerPart;
        into[_indexOf(treasury)] += protocolPart;
        into[_indexOf(relayer)] += relayerPart;
        uint256 rest = payeePart;
        for (uint256 j = 1; j < payees.length; ++j) {
            uint256 part = payeePart * shares[j] / BPS;
            rest -= part;
            into[_indexOf(payees[j])] += part;
        }
        into[_indexOf(payees[0])] += rest;
    }

    function _indexOf(address account) private view returns (uint256) {
        address[] memory all = accounts();
        for (uint256 i; i < all.length; ++i) {
            if (all[i] == account) return i;
        }
        revert("not a handler account");
    }

    /// @dev A receipt of a random channel and kind (see settleReceipts), signed.
    function _buildReceipt(uint256 s)
        private
        returns (InferenceEscrow.Receipt memory r, bytes memory sig, uint8 kind)
    {
        uint256 ci = s % 3;
        address relayer = (s >> 8) % 11 == 0 ? stranger : vm.addr(_relayerKey(s >> 12));
        uint256 modelId = _model(s >> 20);
        kind = uint8((s >> 28) % 10);
        (uint256 chCalls, uint256 chAmount) = escrow.channel(callers[ci], relayer, modelId);
        (, uint256 receiptPrice,,) = registry.receiptTerms(modelId);
        uint256 newCalls = 1 + (s >> 36) % 3;
        uint256 pay = newCalls * receiptPrice + ((s >> 40) % 4 == 0 ? (s >> 44) % 1_000 : 0);
        if (kind == 6) {
            newCalls = 0;
            pay = 0;
        } else if (kind == 7) {
            if (receiptPrice == 0) kind = 0;
            else pay = newCalls * receiptPrice - 1;
        }
        if (kind < 6 && (s >> 56) % 4 != 0) {
            uint256 credit = escrow.balanceOf(callers[ci]);
            if (credit < pay) _deposit(callers[ci], pay - credit);
        }
        uint64 deadline = kind == 9 ? uint64(block.timestamp - 1) : uint64(block.timestamp + 1 hours);
        r = InferenceEscrow.Receipt(callers[ci], relayer, modelId, chCalls + newCalls, chAmount + pay, deadline);
        (uint8 v, bytes32 rr, bytes32 ss) = vm.sign(kind == 8 ? strangerKey : callerKeys[ci], escrow.hashReceipt(r));
        sig = abi.encodePacked(rr, ss, v);

        bytes32 key = _channelKey(callers[ci], relayer, modelId);
        if (!knownChannel[key]) {
            knownChannel[key] = true;
            channelIds.push(ChannelId(callers[ci], relayer, modelId));
        }
    }

    /// @dev A settled receipt: it must be a kind that may settle, pay exactly its channel's
    /// increase, at least the receipt price per new call; its split is added to `expected`.
    function _onReceiptSettled(InferenceEscrow.Receipt memory r, uint8 kind, uint256 paid, uint256[] memory expected)
        private
    {
        if (kind >= 6) _violate("a replayed, underpriced, foreign-signed or expired receipt settled");
        bytes32 key = _channelKey(r.caller, r.relayer, r.modelId);
        uint256 prevCalls = ghostChannelCalls[key];
        uint256 prevAmount = ghostChannelAmount[key];
        if (r.calls <= prevCalls || r.amount < prevAmount || paid != r.amount - prevAmount) {
            _violate("a receipt paid other than its channel's increase");
            return;
        }
        (, uint256 receiptPrice,,) = registry.receiptTerms(r.modelId);
        if (paid < (r.calls - prevCalls) * receiptPrice) _violate("a receipt settled below the receipt price");
        ghostChannelCalls[key] = r.calls;
        ghostChannelAmount[key] = r.amount;
        receiptsSettled += 1;

        (address[] memory payees, uint16[] memory shares) = registry.getPayees(r.modelId);
        _addSplit(expected, paid, r.relayer, payees, shares);
    }

    /// @dev The reasons each kind of item may be skipped for.
    function _checkSkipReason(uint8 kind, uint8 reason) private {
        if (reason < NOT_NEWER || reason > 7) _violate("a receipt was skipped with a reason out of range");
        if (kind == 9 && reason != EXPIRED) _violate("an expired receipt was skipped for another reason");
        if (kind == 6 && reason != NOT_NEWER) _violate("a replayed receipt was skipped for another reason");
        if (kind == 8 && reason != INVALID_SIGNATURE && reason != NOT_NEWER) {
            _violate("a receipt signed by another key was skipped for another reason");
        }
        if (kind == 7 && reason != UNDERPRICED && reason != NOT_NEWER && reason != NOT_ACTIVE_RELAYER) {
            _violate("an underpriced receipt was skipped for another reason");
        }
        if (kind < 6 && (reason == EXPIRED || reason == INVALID_SIGNATURE || reason == UNKNOWN_MODEL)) {
            _violate("a valid receipt was skipped as expired, badly signed or of an unknown model");
        }
    }

    function _channelKey(address caller, address relayer, uint256 modelId) private pure returns (bytes32) {
        return keccak256(abi.encode(caller, relayer, modelId));
    }

    function _callerIndex(address caller) private view returns (uint256) {
        for (uint256 i; i < 3; ++i) {
            if (callers[i] == caller) return i;
        }
        revert("not a caller");
    }

    function _countEndings() private {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter != address(escrow)) continue;
            bytes32 topic = logs[i].topics[0];
            if (topic != FULFILLED_TOPIC && topic != REJECTED_TOPIC && topic != REFUNDED_TOPIC) continue;
            uint256 id = uint256(logs[i].topics[1]);
            if (++endings[id] > 1) _violate("a request ended twice");
            if (topic == FULFILLED_TOPIC) {
                settledCalls += 1;
                settledRevenue += tracked[id].price;
                requestCallsOf[tracked[id].modelId] += 1;
                requestRevenueOf[tracked[id].modelId] += tracked[id].price;
            }
        }
    }

    function _earnings() private view returns (uint256[] memory values) {
        address[] memory all = accounts();
        values = new uint256[](all.length);
        for (uint256 i; i < all.length; ++i) {
            values[i] = escrow.earningsOf(all[i]);
        }
    }

    function _sum(uint256[] memory values) private pure returns (uint256 total) {
        for (uint256 i; i < values.length; ++i) {
            total += values[i];
        }
    }

    function _sign(uint256 key, InferenceEscrow.Attestation memory att) private view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, escrow.hashAttestation(att));
        return abi.encodePacked(r, s, v);
    }

    function _deposit(address caller, uint256 amount) private {
        deposited[caller] += amount;
        token.mint(caller, amount);
        vm.startPrank(caller);
        token.approve(address(escrow), amount);
        escrow.deposit(amount);
        vm.stopPrank();
    }

    function _bond(address relayer, uint256 amount) private {
        token.mint(relayer, amount);
        vm.startPrank(relayer);
        token.approve(address(relayers), amount);
        relayers.register("http://relayer", amount);
        vm.stopPrank();
    }

    function _price(uint256 seed) private pure returns (uint256) {
        if (seed % 5 == 0) return 0;
        if (seed % 5 == 1) return seed % 10_000;
        if (seed % 5 == 2) return MAX_PRICE - seed % 3;
        return seed % (MAX_PRICE + 1) >> (seed % 100);
    }

    /// @dev An active relayer's key three times in four (if there is one), else any relayer's.
    function _relayerKey(uint256 seed) private view returns (uint256) {
        if (seed % 4 != 0) {
            for (uint256 i; i < 3; ++i) {
                uint256 j = (seed % 3 + i) % 3;
                if (relayers.isActive(relayerAddrs[j])) return relayerKeys[j];
            }
        }
        return relayerKeys[seed % 3];
    }

    function _model(uint256 seed) private view returns (uint256) {
        return modelIds[seed % modelIds.length];
    }

    /// @dev A pending request (one still in time, three times in four), else any.
    function _pendingOr(uint256 seed) private view returns (uint256) {
        uint256 n = requestIds.length;
        bool inTime = seed % 4 != 0;
        for (uint256 i; i < n; ++i) {
            uint256 id = requestIds[(seed % n + i) % n];
            if (endings[id] == 0 && (!inTime || tracked[id].deadline >= block.timestamp)) return id;
        }
        for (uint256 i; i < n; ++i) {
            uint256 id = requestIds[(seed % n + i) % n];
            if (endings[id] == 0) return id;
        }
        return requestIds[seed % n];
    }

    function _endedOr(uint256 seed) private view returns (uint256) {
        uint256 n = requestIds.length;
        for (uint256 i; i < n; ++i) {
            uint256 id = requestIds[(seed % n + i) % n];
            if (endings[id] != 0) return id;
        }
        return requestIds[seed % n];
    }

    function _violate(string memory what) private {
        violations.push(what);
    }

    function _count(string memory what) private {
        calls[keccak256(bytes(what))] += 1;
    }
}
