// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EscrowTerms} from "./EscrowTerms.sol";

/// @title EscrowReceiptSigners: which keys may sign an account's receipts
/// @notice Its own key, and a signer key it registered (how contract wallets pay), checked by
/// ECDSA alone; a change of signer applies `withdrawalDelay` later, so that relayers can settle
/// what the old key signed.
abstract contract EscrowReceiptSigners is EscrowTerms {
    // ------------------------------------------------------------------ storage

    /// @dev A key that signs receipts for an account, and a change of it waiting for its time.
    struct ReceiptSigner {
        address current;
        uint40 nextAt; // 0: no change pending
        address next;
    }

    // Written through storage pointers, which Slither does not follow.
    // slither-disable-next-line uninitialized-state
    mapping(address account => ReceiptSigner) private _signers;

    // ------------------------------------------------------------------ external

    /// @notice Lets `signer` sign receipts for the caller besides the caller's own key (a contract
    /// wallet needs one: receipts are checked by ECDSA alone). The first signer applies at once;
    /// replacing or removing (0) one applies `withdrawalDelay` from now, so that relayers can
    /// settle receipts the old key signed.
    /// @param signer The new signer key (address(0): none).
    function setReceiptSigner(address signer) external {
        ReceiptSigner storage key = _signers[msg.sender];
        address inForce = _signerInForce(key);
        uint64 effectiveAt = uint64(block.timestamp);
        if (inForce == address(0)) {
            key.current = signer;
            key.next = address(0);
            key.nextAt = 0;
        } else {
            effectiveAt += withdrawalDelay;
            key.current = inForce;
            key.next = signer;
            // uint40 seconds last until the year 36812.
            key.nextAt = uint40(effectiveAt);
        }
        emit ReceiptSignerChanged(msg.sender, signer, effectiveAt);
    }

    /// @notice The key that signs receipts for `account` besides its own (0: none), and a change
    /// of it that applies at `nextAt` (0, 0 when none is pending).
    /// @param account Any account.
    /// @return signer The signer key in force now.
    /// @return nextSigner The key a pending change puts in force.
    /// @return nextAt When that change applies.
    function receiptSigner(address account) external view returns (address signer, address nextSigner, uint64 nextAt) {
        ReceiptSigner storage key = _signers[account];
        signer = _signerInForce(key);
        if (key.nextAt != 0 && block.timestamp < key.nextAt) return (signer, key.next, key.nextAt);
    }

    // ------------------------------------------------------------------ internal

    /// @dev Whether `digest` was signed by `account`'s own key or by its receipt signer in force.
    /// ECDSA only: no call out, so the answer cannot change between a relayer's check and here.
    function _signedBy(address account, bytes32 digest, bytes calldata signature) internal view returns (bool) {
        // The third value only details the error; any error means "not signed".
        // slither-disable-next-line unused-return
        (address signer, ECDSA.RecoverError recoverError,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (recoverError != ECDSA.RecoverError.NoError) return false;
        if (signer == account) return true;
        address delegated = _signerInForce(_signers[account]);
        return delegated != address(0) && signer == delegated;
    }

    function _signerInForce(ReceiptSigner storage key) private view returns (address) {
        uint256 nextAt = key.nextAt;
        if (nextAt != 0 && block.timestamp >= nextAt) return key.next;
        return key.current;
    }
}
