// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ExactTransfer} from "../libraries/ExactTransfer.sol";
import {EscrowBase} from "./EscrowBase.sol";

/// @title EscrowCredit: callers' free credit, deposited and withdrawn
/// @notice Free credit pays on-chain requests and funds reservations; it backs no receipt, so
/// it is withdrawn at once.
abstract contract EscrowCredit is EscrowBase {
    using SafeERC20 for IERC20;
    using ExactTransfer for IERC20;

    // ------------------------------------------------------------------ storage

    /// @dev A caller's free credit and the number of requests it has made, in one slot: a request
    /// debits the credit and takes the next number with a single storage write.
    struct CallerAccount {
        uint160 credit;
        uint96 requests;
    }

    mapping(address account => CallerAccount) internal _accounts;

    // ------------------------------------------------------------------ external

    /// @notice Adds `amount` tokens to the caller's credit.
    /// @param amount Tokens to pull from the caller (approved to the escrow first).
    function deposit(uint256 amount) external {
        depositFor(msg.sender, amount);
    }

    /// @notice Adds `amount` tokens, paid by the caller, to `account`'s credit.
    /// @param account Whose credit grows.
    /// @param amount Tokens to pull from the caller (approved to the escrow first).
    function depositFor(address account, uint256 amount) public nonReentrant {
        if (amount == 0) revert InferenceEscrow_ZeroAmount();
        if (account == address(0)) revert InferenceEscrow_ZeroAddress();
        _addFreeCredit(account, amount);
        emit Deposited(account, amount);
        token.pullExact(msg.sender, amount);
    }

    /// @notice Sends `amount` of the caller's free credit back to it. Free credit backs no
    /// receipt (reservations do), so it leaves at once.
    /// @param amount Tokens to send; at most the caller's free credit.
    function withdraw(uint256 amount) external nonReentrant {
        if (amount == 0) revert InferenceEscrow_ZeroAmount();
        CallerAccount storage account = _accounts[msg.sender];
        uint256 credit = account.credit;
        if (credit < amount) revert InferenceEscrow_InsufficientCredit(msg.sender, credit, amount);
        unchecked {
            account.credit = uint160(credit - amount);
        }
        emit Withdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    /// @notice Free prepaid credit of `account`.
    /// @param account Any account.
    /// @return Its free credit.
    function balanceOf(address account) external view returns (uint256) {
        return _accounts[account].credit;
    }

    // ------------------------------------------------------------------ internal

    /// @dev Adds to `account`'s free credit (a deposit, a refund, a release), within 160 bits.
    function _addFreeCredit(address account, uint256 amount) internal {
        CallerAccount storage caller = _accounts[account];
        uint256 credit = caller.credit + amount;
        if (credit > type(uint160).max) revert InferenceEscrow_CreditOverflow(account, caller.credit, type(uint160).max);
        caller.credit = uint160(credit);
    }
}
