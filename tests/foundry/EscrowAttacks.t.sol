// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {WithVm, Vm} from "./Vm.sol";
import {HubToken} from "../../contracts/HubToken.sol";
import {ModelRegistry} from "../../contracts/ModelRegistry.sol";
import {RelayerRegistry} from "../../contracts/RelayerRegistry.sol";
import {InferenceEscrow} from "../../contracts/InferenceEscrow.sol";
import {IInferenceEscrow} from "../../contracts/interfaces/IInferenceEscrow.sol";

/// @title Fixed call sequences of the attacks the invariant handler explores at random
/// @notice Each test performs one sequence on fresh contracts and checks that it moves no money
/// it should not, or that a relayer following its policy is paid.
contract EscrowAttacks is WithVm {
    uint64 internal constant WD = 1800;
    uint64 internal constant PN = 3600;

    HubToken internal token;
    ModelRegistry internal registry;
    RelayerRegistry internal relayers;
    InferenceEscrow internal escrow;

    uint256 internal callerKey = 0xCA11E0;
    address internal caller;
    uint256 internal relayerKey = 0xBEEF;
    address internal relayer;
    address internal attacker; // a bonded relayer too
    address internal author = address(0xA070);
    uint256 internal modelId;

    error Broken(string what, uint256 left, uint256 right);

    function setUp() public {
        token = new HubToken();
        registry = new ModelRegistry(PN);
        relayers = new RelayerRegistry(token, 100e18, 7200);
        escrow = new InferenceEscrow(token, registry, relayers, address(0x7EA5), 500, 1_000, 600, WD);
        caller = vm.addr(callerKey);
        relayer = vm.addr(relayerKey);
        attacker = vm.addr(0xA77AC);
        _bond(relayer);
        _bond(attacker);
        vm.prank(author);
        modelId = registry.registerModel("m", keccak256("m"), "", 1);
        token.mint(caller, 1e24);
        vm.startPrank(caller);
        token.approve(address(escrow), 1e24);
        escrow.deposit(1e24);
        escrow.reserve(relayer, 1e21);
        vm.stopPrank();
    }

    /// @notice A caller signs itself a receipt naming the relayer it reserved for and submits it;
    /// another bonded relayer submits it too: neither settles, nothing moves.
    function test_selfDealtReceiptsNeverMoveMoney() public {
        IInferenceEscrow.Receipt memory r = IInferenceEscrow.Receipt(caller, relayer, modelId, 1, 1e21, uint64(block.timestamp + 600));
        _settleExpectSkip(caller, r, 8);
        _settleExpectSkip(attacker, r, 8);
        r.relayer = attacker; // naming the attacker: the caller has no reservation for it
        _settleExpectSkip(attacker, r, 7);
        (uint256 reserved,,) = escrow.reservation(caller, relayer);
        if (reserved != 1e21) revert Broken("the reservation moved", reserved, 1e21);
        if (escrow.earningsOf(attacker) != 0 || escrow.earningsOf(author) != 0) revert Broken("someone earned", 0, 0);
    }

    /// @notice Attack 5 after the fix: a channel settled under a price notice keeps the notice's
    /// floor (channelPrice says so, also after the notice ended), so its relayer accepts a
    /// receipt at the floor; the model's owner then raises the price again and the relayer's
    /// settlement, in the same block, must still go through.
    function test_priceRiseAfterNoticeEndKeepsAcceptedReceiptsSettleable() public {
        vm.prank(author);
        registry.setPrice(modelId, 10); // notice: floor 1 until now + PN
        _settle(IInferenceEscrow.Receipt(caller, relayer, modelId, 1, 1, uint64(block.timestamp + 2 * WD)));
        vm.warp(block.timestamp + PN + 1); // the notice has ended; the channel settled under it
        uint256 price = escrow.channelPrice(caller, relayer, modelId);
        if (price != 1) revert Broken("channelPrice is not the floor the channel settled under", price, 1);
        // The relayer serves 5 calls at 1 each, as channelPrice tells it.
        IInferenceEscrow.Receipt memory r = IInferenceEscrow.Receipt(caller, relayer, modelId, 6, 6, uint64(block.timestamp + 2 * WD));
        vm.prank(author);
        registry.setPrice(modelId, 11); // a second rise, after the first notice ended
        _settle(r);
    }

    /// @notice A cut and then a rise, both after a notice ended, and a channel's first settlement
    /// long after all of it: the channel whose caller reserved for its relayer before the first
    /// notice ended keeps the lowest price the model ever had until it first settles (however
    /// late); a reservation opened after that notice ended pays the price in force, and falls to
    /// the floor when a new rise starts a notice; once settled after the last notice ended, the
    /// channel pays the price.
    function test_cutThenRiseAfterNoticeEndAndLateFirstSettlement() public {
        uint256 t0 = block.timestamp; // the reservation (caller, relayer) opened in setUp
        vm.prank(author);
        registry.setPrice(modelId, 100); // a rise: notice, floor 1 until t0 + PN
        vm.warp(t0 + PN + 1); // the notice has ended; the channel never settled
        _expectPrice(caller, relayer, 1, "a channel reserved for under the notice");
        vm.prank(caller);
        escrow.reserve(attacker, 1e21); // a reservation opened after the notice ended
        _expectPrice(caller, attacker, 100, "a channel reserved for after the notice ended");

        vm.prank(author);
        registry.setPrice(modelId, 50); // a cut after the notice ended: no notice
        (uint256 noticePrice, uint64 noticeEnds) = registry.priceNotice(modelId);
        if (noticePrice != 0 || noticeEnds != 0) revert Broken("a cut started a notice", noticePrice, noticeEnds);
        _expectPrice(caller, relayer, 1, "the cut changed the floor of the channel reserved for under the notice");
        _expectPrice(caller, attacker, 50, "the cut did not lower the price of the channel reserved for later");
        // Both relayers accept receipts at the prices channelPrice shows.
        uint64 deadline = uint64(block.timestamp + 100 * PN);
        IInferenceEscrow.Receipt memory a = IInferenceEscrow.Receipt(caller, relayer, modelId, 3, 3, deadline);
        IInferenceEscrow.Receipt memory b = IInferenceEscrow.Receipt(caller, attacker, modelId, 2, 100, deadline);

        vm.prank(author);
        registry.setPrice(modelId, 80); // a rise after the cut: a notice with the cut price as its floor
        uint256 endsAt = block.timestamp + PN;
        (noticePrice, noticeEnds) = registry.priceNotice(modelId);
        if (noticePrice != 50 || noticeEnds != endsAt) revert Broken("the rise's notice is not at the cut price", noticePrice, noticeEnds);
        (, uint256 price, uint256 floorPrice, uint64 floorEndsAt,,) = registry.receiptTerms(modelId);
        if (price != 80 || floorPrice != 1 || floorEndsAt != endsAt) {
            revert Broken("receiptTerms' floor is not the lowest price ever, until the rise's notice end", floorPrice, floorEndsAt);
        }
        _expectPrice(caller, relayer, 1, "the rise changed the floor of the channel reserved for under the first notice");
        _expectPrice(caller, attacker, 1, "the rise did not give the later channel the floor");

        vm.warp(endsAt + 10 * PN); // long after every notice: the first settlements
        _expectPrice(caller, relayer, 1, "time raised the price of a channel that never settled");
        _settle(a);
        _settle(b);
        // Settled after the last notice ended: new calls pay the price.
        _expectPrice(caller, relayer, 80, "a channel settled after the last notice ended does not pay the price");
        _settleExpectSkip(relayer, IInferenceEscrow.Receipt(caller, relayer, modelId, 4, 4, deadline), 6);
        _settle(IInferenceEscrow.Receipt(caller, relayer, modelId, 4, 83, deadline));
    }

    function _expectPrice(address who, address via, uint256 want, string memory what) internal view {
        uint256 got = escrow.channelPrice(who, via, modelId);
        if (got != want) revert Broken(what, got, want);
    }

    function _settle(IInferenceEscrow.Receipt memory r) internal {
        (uint256 callsBefore,) = escrow.channel(r.caller, r.relayer, r.modelId);
        IInferenceEscrow.Receipt[] memory list = new IInferenceEscrow.Receipt[](1);
        list[0] = r;
        bytes[] memory sigs = new bytes[](1);
        sigs[0] = _sign(r);
        vm.recordLogs();
        vm.prank(r.relayer);
        escrow.settleReceipts(list, sigs);
        (uint256 callsAfter,) = escrow.channel(r.caller, r.relayer, r.modelId);
        if (callsAfter != r.calls) revert Broken("the relayer's receipt did not settle; skip reason", _skipReason(), callsBefore);
    }

    function _settleExpectSkip(address submitter, IInferenceEscrow.Receipt memory r, uint8 reason) internal {
        IInferenceEscrow.Receipt[] memory list = new IInferenceEscrow.Receipt[](1);
        list[0] = r;
        bytes[] memory sigs = new bytes[](1);
        sigs[0] = _sign(r);
        vm.recordLogs();
        vm.prank(submitter);
        escrow.settleReceipts(list, sigs);
        uint256 got = _skipReason();
        if (got != reason) revert Broken("skipped for another reason", got, reason);
    }

    function _skipReason() internal returns (uint256) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bytes32 topic = keccak256("ReceiptSkipped(address,address,uint256,uint256,uint8)");
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == topic) {
                (, uint8 reason) = abi.decode(logs[i].data, (uint256, uint8));
                return reason;
            }
        }
        return 0;
    }

    function _sign(IInferenceEscrow.Receipt memory r) internal view returns (bytes memory) {
        (uint8 v, bytes32 rr, bytes32 ss) = vm.sign(callerKey, escrow.hashReceipt(r));
        return abi.encodePacked(rr, ss, v);
    }

    function _bond(address who) internal {
        token.mint(who, 100e18);
        vm.startPrank(who);
        token.approve(address(relayers), 100e18);
        relayers.register("http://relayer", 100e18);
        vm.stopPrank();
    }
}
