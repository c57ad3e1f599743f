// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {FeeSplit} from "../libraries/FeeSplit.sol";
import {EscrowTerms} from "./EscrowTerms.sol";

/// @title EscrowEarnings: the ledger of released revenue, and its withdrawal
/// @notice A settled price is split by FeeSplit between the treasury, the serving relayer and
/// the model's payees, under the fees and payees in force at settlement, and booked to each as
/// earnings, which they pull with `withdrawEarnings`.
abstract contract EscrowEarnings is EscrowTerms {
    using SafeERC20 for IERC20;

    // ------------------------------------------------------------------ storage

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

    /// @notice Released revenue waiting for `withdrawEarnings` (payees, relayers, treasury).
    mapping(address account => uint256) public earningsOf;

    // ------------------------------------------------------------------ external

    /// @notice Pays out all of the caller's released earnings.
    function withdrawEarnings() external nonReentrant {
        uint256 amount = earningsOf[msg.sender];
        if (amount == 0) revert InferenceEscrow_NothingToWithdraw(msg.sender);
        earningsOf[msg.sender] = 0;
        emit EarningsWithdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ internal

    function _startSettlement() internal view returns (Settlement memory run) {
        run.fees = _feesInForce();
    }

    /// @dev Splits `price` by FeeSplit: treasury and relayer parts accumulate in `run`, payee
    /// parts go straight to earnings (in a batch their slots are warm after the first item).
    function _bookSplit(Settlement memory run, address relayer, uint256 modelId, uint256 price) internal {
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

    function _finishSettlement(Settlement memory run) internal {
        _addEarnings(run.relayer, run.relayerEarned);
        _addEarnings(run.fees.treasury, run.treasuryEarned);
    }

    function _addEarnings(address account, uint256 amount) private {
        if (amount != 0) earningsOf[account] += amount;
    }
}
