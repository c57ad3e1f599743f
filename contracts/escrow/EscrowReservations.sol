// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ExactTransfer} from "../libraries/ExactTransfer.sol";
import {EscrowCredit} from "./EscrowCredit.sol";
import {EscrowTerms} from "./EscrowTerms.sol";

/// @title EscrowReservations: credit a caller sets aside for one relayer's receipts
/// @notice Only that relayer can settle receipts against a reservation, and it comes back to
/// free credit only `withdrawalDelay` after `announceRelease`: from the chain alone a relayer
/// knows what it can serve without loss.
abstract contract EscrowReservations is EscrowTerms, EscrowCredit {
    using ExactTransfer for IERC20;

    // ------------------------------------------------------------------ storage

    /// @dev Credit a caller set aside for one relayer's receipts, and a release it announced.
    /// Settlement reads only the first slot.
    struct Reservation {
        uint160 amount;
        uint40 releaseAt; // 0: no release announced
        uint40 openedAt; // the first reserve: no receipt paid from it was signed before
        uint160 releasing;
    }

    // Written through storage pointers, which Slither does not follow.
    // slither-disable-next-line uninitialized-state
    mapping(address caller => mapping(address relayer => Reservation)) internal _reservations;

    // ------------------------------------------------------------------ external

    /// @notice Sets `amount` of the caller's free credit aside for receipts paying `relayer`.
    /// Only `relayer` can settle receipts against it; it comes back only through `announceRelease`.
    /// @param relayer The relayer the caller's receipts will pay.
    /// @param amount Free credit to move; at most the caller's free credit.
    function reserve(address relayer, uint256 amount) external {
        if (amount == 0) revert InferenceEscrow_ZeroAmount();
        if (relayer == address(0)) revert InferenceEscrow_ZeroAddress();
        CallerAccount storage account = _accounts[msg.sender];
        uint256 credit = account.credit;
        if (credit < amount) revert InferenceEscrow_InsufficientCredit(msg.sender, credit, amount);
        Reservation storage reservation = _reservations[msg.sender][relayer];
        uint256 reserved = reservation.amount + amount;
        if (reserved > type(uint160).max) {
            revert InferenceEscrow_CreditOverflow(msg.sender, reservation.amount, type(uint160).max);
        }
        unchecked {
            account.credit = uint160(credit - amount);
        }
        reservation.amount = uint160(reserved);
        // uint40 seconds last until the year 36812.
        if (reservation.openedAt == 0) reservation.openedAt = uint40(block.timestamp);
        emit Reserved(msg.sender, relayer, amount, reserved);
    }

    /// @notice Adds `amount` tokens, paid by the sender, to `account`'s reservation for `relayer`
    /// in one step (a deposit for `account` followed by its `reserve`).
    /// @param account Whose reservation grows.
    /// @param relayer The relayer it is reserved for.
    /// @param amount Tokens to pull from the sender (approved to the escrow first).
    function reserveFor(address account, address relayer, uint256 amount) external nonReentrant {
        if (amount == 0) revert InferenceEscrow_ZeroAmount();
        if (account == address(0) || relayer == address(0)) revert InferenceEscrow_ZeroAddress();
        Reservation storage reservation = _reservations[account][relayer];
        uint256 reserved = reservation.amount + amount;
        if (reserved > type(uint160).max) {
            revert InferenceEscrow_CreditOverflow(account, reservation.amount, type(uint160).max);
        }
        reservation.amount = uint160(reserved);
        if (reservation.openedAt == 0) reservation.openedAt = uint40(block.timestamp);
        emit Deposited(account, amount);
        emit Reserved(account, relayer, amount, reserved);
        token.pullExact(msg.sender, amount);
    }

    /// @notice Announces that up to `amount` of the caller's reservation for `relayer` goes back
    /// to free credit `withdrawalDelay` from now (`release`); replaces any earlier announcement
    /// (0 cancels). The relayer settles what it holds meanwhile; until then it stays reserved.
    /// @param relayer The relayer the reservation is for.
    /// @param amount The most to release; 0 cancels an announcement.
    function announceRelease(address relayer, uint256 amount) external {
        if (amount > type(uint160).max) revert InferenceEscrow_CreditOverflow(msg.sender, amount, type(uint160).max);
        Reservation storage reservation = _reservations[msg.sender][relayer];
        uint64 readyAt = amount == 0 ? 0 : uint64(block.timestamp + withdrawalDelay);
        reservation.releasing = uint160(amount);
        // uint40 seconds last until the year 36812.
        reservation.releaseAt = uint40(readyAt);
        emit ReleaseAnnounced(msg.sender, relayer, amount, readyAt);
    }

    /// @notice Moves the announced part of the caller's reservation for `relayer` (at most what
    /// is left of it) back to free credit, once its `readyAt` has come.
    /// @param relayer The relayer the reservation is for.
    function release(address relayer) external {
        Reservation storage reservation = _reservations[msg.sender][relayer];
        uint64 readyAt = reservation.releaseAt;
        if (readyAt == 0) revert InferenceEscrow_NothingToRelease(msg.sender, relayer);
        if (block.timestamp < readyAt) revert InferenceEscrow_ReleaseNotReady(msg.sender, relayer, readyAt);
        uint256 reserved = reservation.amount;
        uint256 amount = reservation.releasing < reserved ? reservation.releasing : reserved;
        unchecked {
            reservation.amount = uint160(reserved - amount);
        }
        reservation.releasing = 0;
        reservation.releaseAt = 0;
        _addFreeCredit(msg.sender, amount);
        emit Released(msg.sender, relayer, amount);
    }

    /// @notice What `caller` set aside for `relayer`'s receipts, and the release it announced.
    /// @param caller The caller.
    /// @param relayer The relayer.
    /// @return reserved What receipts to `relayer` may still be paid from.
    /// @return releasing The announced release (0: none).
    /// @return releaseAt When it may be released (0: none).
    function reservation(address caller, address relayer)
        external
        view
        returns (uint256 reserved, uint256 releasing, uint64 releaseAt)
    {
        Reservation storage r = _reservations[caller][relayer];
        return (r.amount, r.releasing, r.releaseAt);
    }
}
