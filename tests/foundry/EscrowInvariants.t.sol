// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {WithVm, FuzzSelector} from "./Vm.sol";
import {EscrowHandler} from "./EscrowHandler.sol";
import {InferenceEscrow} from "../../contracts/InferenceEscrow.sol";
import {RelayerRegistry} from "../../contracts/RelayerRegistry.sol";
import {HubToken} from "../../contracts/HubToken.sol";

/// @title No money is created, lost, paid twice or moved by someone without the right to
/// (forge invariant tests)
/// @notice forge calls random sequences of the handler's actions (runs x depth in foundry.toml)
/// and checks every invariant after each call. The handler predicts each action's outcome from
/// its reference model (HubModel) and records any difference as a violation.
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
        bytes4[] memory actions = new bytes4[](38);
        uint256 i;
        actions[i++] = EscrowHandler.registerModel.selector;
        actions[i++] = EscrowHandler.setPrice.selector;
        actions[i++] = EscrowHandler.setPrice.selector;
        actions[i++] = EscrowHandler.setPayees.selector;
        actions[i++] = EscrowHandler.setActive.selector;
        actions[i++] = EscrowHandler.publishVersion.selector;
        actions[i++] = EscrowHandler.transferModel.selector;
        actions[i++] = EscrowHandler.deposit.selector;
        actions[i++] = EscrowHandler.deposit.selector;
        actions[i++] = EscrowHandler.withdraw.selector;
        actions[i++] = EscrowHandler.withdrawEarnings.selector;
        actions[i++] = EscrowHandler.reserve.selector;
        actions[i++] = EscrowHandler.reserve.selector;
        actions[i++] = EscrowHandler.reserveFor.selector;
        actions[i++] = EscrowHandler.announceRelease.selector;
        actions[i++] = EscrowHandler.release.selector;
        actions[i++] = EscrowHandler.setReceiptSigner.selector;
        actions[i++] = EscrowHandler.signReceipts.selector;
        actions[i++] = EscrowHandler.settleReceipts.selector;
        actions[i++] = EscrowHandler.settleReceipts.selector;
        actions[i++] = EscrowHandler.settleReceipts.selector;
        actions[i++] = EscrowHandler.priceChangeUnderReceipts.selector;
        actions[i++] = EscrowHandler.request.selector;
        actions[i++] = EscrowHandler.request.selector;
        actions[i++] = EscrowHandler.fulfill.selector;
        actions[i++] = EscrowHandler.fulfill.selector;
        actions[i++] = EscrowHandler.fulfillBatch.selector;
        actions[i++] = EscrowHandler.reject.selector;
        actions[i++] = EscrowHandler.refund.selector;
        actions[i++] = EscrowHandler.warp.selector;
        actions[i++] = EscrowHandler.warp.selector;
        actions[i++] = EscrowHandler.warp.selector;
        actions[i++] = EscrowHandler.bondRelayer.selector;
        actions[i++] = EscrowHandler.unbondRelayer.selector;
        actions[i++] = EscrowHandler.setMinBond.selector;
        actions[i++] = EscrowHandler.setFees.selector;
        actions[i++] = EscrowHandler.setTreasury.selector;
        actions[i++] = EscrowHandler.setPaused.selector;
        selectors = new FuzzSelector[](1);
        selectors[0] = FuzzSelector(address(handler), actions);
    }

    // ------------------------------------------------------------------ invariants

    /// @notice All the invariants below, after every call: one fuzzing campaign checks them all
    /// (forge runs a campaign of runs x depth calls per invariant function).
    function invariant_hub() public view {
        _checkPerCallRules();
        _checkConservation();
        _checkBondsBacked();
        _checkContractsMatchTheModel();
        _checkBookkeeping();
        _checkHonestRelayersArePaid();
    }

    /// @notice To the wei: the escrow holds exactly the free credit, the reservations, the prices
    /// locked by pending requests and the unpaid earnings (read from the contracts' views), and
    /// that is what the reference model says too.
    function _checkConservation() internal view {
        address[] memory all = handler.accounts();
        uint256 owed;
        for (uint256 i; i < all.length; ++i) {
            owed += escrow.balanceOf(all[i]) + escrow.earningsOf(all[i]);
        }
        for (uint256 c; c < 4; ++c) {
            for (uint256 r; r < 4; ++r) {
                (uint256 reserved,,) = escrow.reservation(handler.callerAt(c), handler.relayerAt(r));
                owed += reserved;
            }
        }
        owed += handler.lockedByPending();
        uint256 held = token.balanceOf(address(escrow));
        if (held != owed) revert InvariantBroken("escrow balance != credit + reservations + locked + earnings", held, owed);
        uint256 modelHeld = handler.ghostHeld();
        if (held != modelHeld) revert InvariantBroken("escrow balance != what the model says it holds", held, modelHeld);
    }

    /// @notice The relayer registry holds exactly the bonds.
    function _checkBondsBacked() internal view {
        uint256 bonds;
        for (uint256 i; i < 4; ++i) {
            (, uint256 bond,,) = relayers.relayerInfo(handler.relayerAt(i));
            bonds += bond;
        }
        uint256 held = token.balanceOf(address(relayers));
        if (held != bonds || held != handler.ghostBonds()) revert InvariantBroken("relayer registry balance != bonds", held, bonds);
    }

    /// @notice Every view of the three contracts reads what the reference model says.
    function _checkContractsMatchTheModel() internal view {
        (string memory what, uint256 a, uint256 b) = handler.mismatch();
        if (bytes(what).length != 0) revert InvariantBroken(what, a, b);
    }

    /// @notice Per-call rules the handler checked: each action succeeded or reverted exactly as
    /// predicted, each batch item settled or was skipped for the model's reason and paid the
    /// model's amount, split by the rounding rule; reservations moved only by their caller's
    /// reserve, their relayer's settlement or a ready release; no item naming another relayer
    /// than its submitter settled (the self-dealing attack); honest relayers' accepted receipts
    /// settled.
    function _checkPerCallRules() internal view {
        uint256 count = handler.violationCount();
        if (count != 0) {
            (string memory what, uint256 a, uint256 b) = handler.violation(0);
            revert InvariantBroken(what, a, b);
        }
    }

    /// @notice Every request ended at most once, with the event of the state it is in; every
    /// channel was paid exactly its settled amount, by increases, and at least 1 base unit per
    /// call it counts; each model's modelStats are its settled requests (count and prices, from
    /// the InferenceFulfilled events) plus the settled totals of its channels.
    function _checkBookkeeping() internal view {
        (string memory what, uint256 a, uint256 b) = handler.bookkeepingMismatch();
        if (bytes(what).length != 0) revert InvariantBroken(what, a, b);
    }

    /// @notice A relayer that follows its policy is paid for every receipt it accepted.
    function _checkHonestRelayersArePaid() internal view {
        uint256 losses = handler.honestLosses();
        if (losses != 0 && handler.honestCheck()) revert InvariantBroken("an honest relayer served calls it was not paid for", losses, 0);
    }

    // ------------------------------------------------------------------ the handler's paths are live

    /// @notice The handler's actions do settle, refund, release and pay out, so the invariants
    /// are not vacuous.
    function test_handlerPaths() public {
        handler.request(16, 0, 1 << 2); // caller 0 (funded), model 1, latest version, open
        if (handler.requestCount() != 1) revert InvariantBroken("the handler's request failed", handler.requestCount(), 1);
        handler.fulfill(2 << 4 | 1, 0); // the pending request in time, a valid attestation
        if (handler.requestsSettled() != 1) revert InvariantBroken("the handler's fulfill did not settle", handler.requestsSettled(), 1);
        for (uint256 seed; seed < 24 && handler.receiptsSettled() == 0; ++seed) {
            handler.settleReceipts(seed);
        }
        if (handler.receiptsSettled() == 0) revert InvariantBroken("the handler's receipts never settled", 0, 1);
        handler.announceRelease(0, 0, 2); // caller 0, relayer 0, all of it
        handler.release(0, 0, 1); // readyAt - 1: refused
        handler.release(0, 0, 2); // at readyAt
        handler.withdrawEarnings(9); // the treasury
        _noViolations();
    }

    /// @notice A long pseudo-random walk over the same actions reaches the outcomes the
    /// invariants are about (so they are not vacuous), and every invariant holds after it.
    function test_randomWalkReachesOutcomes() public {
        bytes4[] memory actions = targetSelectors()[0].selectors;
        uint256 seed = 0x5EED;
        for (uint256 i; i < 1500; ++i) {
            seed = uint256(keccak256(abi.encode(seed, i)));
            bytes4 action = actions[seed % actions.length];
            (bool ok,) = address(handler).call(
                abi.encodeWithSelector(action, uint256(keccak256(abi.encode(seed, 1))), uint256(keccak256(abi.encode(seed, 2))), uint256(keccak256(abi.encode(seed, 3))))
            );
            if (!ok) revert InvariantBroken("a handler action reverted", i, uint32(action));
        }
        invariant_hub();
        string[18] memory outcomes = [
            "receipt settled",
            "receipt skipped 1",
            "receipt skipped 2",
            "receipt skipped 3",
            "receipt skipped 4",
            "receipt skipped 5",
            "receipt skipped 6",
            "receipt skipped 7",
            "receipt skipped 8",
            "receipt accepted and held",
            "fulfill 0",
            "fulfill 2 refused",
            "reject by the designated relayer",
            "reject an open or ended request refused",
            "refund",
            "release",
            "release refused",
            "setPayees (delayed)"
        ];
        for (uint256 i; i < outcomes.length; ++i) {
            if (handler.countOf(outcomes[i]) == 0) revert InvariantBroken(string.concat("never reached: ", outcomes[i]), i, 0);
        }
        if (handler.countOf("fulfill 5 refused") + handler.countOf("attestation skipped 5") == 0) {
            revert InvariantBroken("never reached: an attestation by an inactive relayer or a stranger", 0, 0);
        }
        if (handler.countOf("fulfill 6 refused") + handler.countOf("attestation skipped 6") == 0) {
            revert InvariantBroken("never reached: an attestation by another than the designated relayer", 0, 0);
        }
        if (handler.acceptedSettled() == 0) revert InvariantBroken("no accepted receipt settled", 0, 0);
    }

    function _noViolations() internal view {
        if (handler.violationCount() != 0) {
            (string memory what, uint256 a, uint256 b) = handler.violation(0);
            revert InvariantBroken(what, a, b);
        }
        (string memory m, uint256 x, uint256 y) = handler.mismatch();
        if (bytes(m).length != 0) revert InvariantBroken(m, x, y);
    }
}
