// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {WithVm, FuzzSelector} from "./Vm.sol";
import {EscrowHandler} from "./EscrowHandler.sol";
import {InferenceEscrow} from "../../contracts/InferenceEscrow.sol";
import {RelayerRegistry} from "../../contracts/RelayerRegistry.sol";
import {HubToken} from "../../contracts/HubToken.sol";

/// @title No money is created, lost or paid twice (forge invariant tests)
/// @notice forge calls random sequences of the handler's actions (runs x depth in foundry.toml)
/// and checks every invariant after each call.
contract EscrowInvariants is WithVm {
    EscrowHandler internal handler;
    InferenceEscrow internal escrow;
    RelayerRegistry internal relayers;
    HubToken internal token;

    error InvariantBroken(string what, uint256 left, uint256 right);

    function setUp() public {
        handler = new EscrowHandler();
        escrow = handler.escrow();
        relayers = handler.relayers();
        token = handler.token();
    }

    /// @notice Only the handler is fuzzed, and only its actions.
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory selectors) {
        bytes4[] memory actions = new bytes4[](24);
        actions[0] = EscrowHandler.registerModel.selector;
        actions[1] = EscrowHandler.setPrice.selector;
        actions[2] = EscrowHandler.setPayees.selector;
        actions[3] = EscrowHandler.setActive.selector;
        actions[4] = EscrowHandler.deposit.selector;
        actions[5] = EscrowHandler.withdraw.selector;
        actions[6] = EscrowHandler.withdrawEarnings.selector;
        actions[7] = EscrowHandler.request.selector;
        actions[8] = EscrowHandler.request.selector; // the money path twice as often
        actions[9] = EscrowHandler.fulfill.selector;
        actions[10] = EscrowHandler.fulfill.selector;
        actions[11] = EscrowHandler.fulfillBatch.selector;
        actions[12] = EscrowHandler.reject.selector;
        actions[13] = EscrowHandler.refund.selector;
        actions[14] = EscrowHandler.warp.selector;
        actions[15] = EscrowHandler.bondRelayer.selector;
        actions[16] = EscrowHandler.unbondRelayer.selector;
        actions[17] = EscrowHandler.setFees.selector;
        actions[18] = EscrowHandler.setPaused.selector;
        actions[19] = EscrowHandler.settleReceipts.selector;
        actions[20] = EscrowHandler.settleReceipts.selector; // the receipts' money path twice as often
        actions[21] = EscrowHandler.enableReceipts.selector;
        actions[22] = EscrowHandler.announceWithdrawal.selector;
        actions[23] = EscrowHandler.withdrawAnnounced.selector;
        selectors = new FuzzSelector[](1);
        selectors[0] = FuzzSelector(address(handler), actions);
    }

    /// @notice The escrow holds exactly the free credit, the prices of pending calls and the
    /// unpaid earnings.
    function invariant_conservation() public view {
        address[] memory all = handler.accounts();
        uint256 owed;
        for (uint256 i; i < all.length; ++i) {
            owed += escrow.balanceOf(all[i]) + escrow.earningsOf(all[i]);
        }
        uint256 n = handler.requestCount();
        for (uint256 i; i < n; ++i) {
            (,,, uint256 price,,, uint8 status) = escrow.getRequest(handler.requestIds(i));
            if (status == 1) owed += price;
        }
        uint256 held = token.balanceOf(address(escrow));
        if (held != owed) revert InvariantBroken("escrow balance != credit + locked + earnings", held, owed);
    }

    /// @notice The relayer registry holds exactly the bonds.
    function invariant_bondsBacked() public view {
        address[] memory all = handler.accounts();
        uint256 bonds;
        for (uint256 i; i < all.length; ++i) {
            (, uint256 bond,,) = relayers.relayerInfo(all[i]);
            bonds += bond;
        }
        uint256 held = token.balanceOf(address(relayers));
        if (held != bonds) revert InvariantBroken("relayer registry balance != bonds", held, bonds);
    }

    /// @notice Every request is in exactly one state and ends at most once, with the event of
    /// the state it is in.
    function invariant_exactlyOnce() public view {
        uint256 n = handler.requestCount();
        for (uint256 i; i < n; ++i) {
            uint256 id = handler.requestIds(i);
            (,,,,,, uint8 status) = escrow.getRequest(id);
            uint256 endings = handler.endings(id);
            if (status < 1 || status > 4) revert InvariantBroken("request status out of range", id, status);
            if (endings > 1) revert InvariantBroken("request ended more than once", id, endings);
            if ((status == 1) != (endings == 0)) revert InvariantBroken("request state and its events disagree", id, status);
        }
    }

    /// @notice Per-call rules the handler checked: splits sum to the price by the rounding rule,
    /// refunds return the locked price, nothing settles twice, each receipt pays exactly its
    /// channel's increase or is skipped for a reason its kind allows, withdrawals of accounts
    /// that sign receipts wait for their announcement.
    function invariant_perCallRules() public view {
        uint256 count = handler.violationCount();
        if (count != 0) revert InvariantBroken(handler.violations(0), count, 0);
    }

    /// @notice The handler's happy path does settle, refund and pay out (so the invariants are
    /// not vacuous).
    function test_handlerHappyPath() public {
        handler.request(0, 0, 1);
        handler.fulfill(0, 0, 0);
        if (handler.settledCalls() != 1) revert InvariantBroken("the handler's fulfill did not settle", handler.settledCalls(), 1);
        handler.request(1, 0, 2);
        handler.refund(1, true);
        if (handler.endings(handler.requestIds(1)) != 1) revert InvariantBroken("the handler's refund did not end the call", 0, 1);
        handler.withdrawEarnings(9); // the treasury
        if (handler.violationCount() != 0) revert InvariantBroken(handler.violations(0), 0, 0);
    }

    /// @notice The handler's receipts and withdrawal-delay actions do settle and pay out.
    function test_handlerReceiptsPath() public {
        handler.enableReceipts(0);
        for (uint256 seed; seed < 12; ++seed) {
            handler.settleReceipts(seed);
        }
        if (handler.receiptsSettled() == 0) revert InvariantBroken("the handler's receipts never settled", 0, 1);
        if (handler.channelCount() == 0) revert InvariantBroken("the handler built no channel", 0, 1);
        address caller = handler.callerAt(0);
        handler.deposit(0, 1e18);
        handler.announceWithdrawal(0, 1); // 1 % (credit + 2) = 1
        (bool enabled, uint256 announced, uint64 readyAt) = escrow.withdrawalNotice(caller);
        if (!enabled || announced != 1) revert InvariantBroken("the handler's announcement did not hold", announced, 1);
        uint256 before = token.balanceOf(caller);
        handler.withdrawAnnounced(0, false); // too early: refused
        if (token.balanceOf(caller) != before) revert InvariantBroken("a withdrawal went through early", 0, 0);
        handler.withdrawAnnounced(0, true);
        if (block.timestamp != readyAt || token.balanceOf(caller) != before + 1) {
            revert InvariantBroken("the handler's announced withdrawal did not pay", token.balanceOf(caller), before + 1);
        }
        if (handler.violationCount() != 0) revert InvariantBroken(handler.violations(0), 0, 0);
    }

    /// @notice Each model's modelStats are its settled requests (count and prices) plus the
    /// settled totals of its channels.
    function invariant_modelStats() public view {
        // The handler registers every model, so ids run from 1 to modelCount.
        uint256 models = handler.modelCount();
        uint256[] memory calls = new uint256[](models + 1);
        uint256[] memory revenue = new uint256[](models + 1);
        uint256 channels = handler.channelCount();
        for (uint256 c; c < channels; ++c) {
            (address caller, address relayer, uint256 modelId) = handler.channelIds(c);
            (uint256 channelCalls, uint256 channelAmount) = escrow.channel(caller, relayer, modelId);
            calls[modelId] += channelCalls;
            revenue[modelId] += channelAmount;
        }
        for (uint256 modelId = 1; modelId <= models; ++modelId) {
            calls[modelId] += handler.requestCallsOf(modelId);
            revenue[modelId] += handler.requestRevenueOf(modelId);
            (uint256 statCalls, uint256 statRevenue) = escrow.modelStats(modelId);
            if (statCalls != calls[modelId]) {
                revert InvariantBroken("modelStats calls != settled requests + channel calls", statCalls, calls[modelId]);
            }
            if (statRevenue != revenue[modelId]) {
                revert InvariantBroken("modelStats revenue != settled request prices + channel amounts", statRevenue, revenue[modelId]);
            }
        }
    }

    /// @notice No channel has settled more than its caller ever deposited, nor all of a caller's
    /// channels together; and channel() reads what the settled receipts left.
    function invariant_channelsBackedByDeposits() public view {
        address[3] memory callers;
        uint256[3] memory deposits;
        uint256[3] memory spent;
        for (uint256 i; i < 3; ++i) {
            callers[i] = handler.callerAt(i);
            deposits[i] = handler.deposited(callers[i]);
        }
        uint256 channels = handler.channelCount();
        for (uint256 c; c < channels; ++c) {
            (address caller, address relayer, uint256 modelId) = handler.channelIds(c);
            (uint256 calls, uint256 amount) = escrow.channel(caller, relayer, modelId);
            uint256 i = caller == callers[0] ? 0 : caller == callers[1] ? 1 : 2;
            if (amount > deposits[i]) revert InvariantBroken("a channel settled more than its caller deposited", amount, deposits[i]);
            spent[i] += amount;
            bytes32 key = keccak256(abi.encode(caller, relayer, modelId));
            if (calls != handler.ghostChannelCalls(key) || amount != handler.ghostChannelAmount(key)) {
                revert InvariantBroken("channel() != the totals of its settled receipts", amount, handler.ghostChannelAmount(key));
            }
        }
        for (uint256 i; i < 3; ++i) {
            if (spent[i] > deposits[i]) revert InvariantBroken("a caller's channels settled more than it deposited", spent[i], deposits[i]);
        }
    }
}
