// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title TestWallet: a minimal ERC-1271 smart account, for tests only
/// @notice Accepts a signature when its owner's key signed the digest, and runs calls its
/// owner sends; it lets the tests show that contract wallets can pay with receipts.
contract TestWallet is IERC1271 {
    error TestWallet_NotOwner(address account);
    error TestWallet_CallFailed(bytes reason);

    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    /// @notice Runs `data` on `target` as this wallet.
    function execute(address target, bytes calldata data) external returns (bytes memory) {
        if (msg.sender != owner) revert TestWallet_NotOwner(msg.sender);
        (bool ok, bytes memory result) = target.call(data);
        if (!ok) revert TestWallet_CallFailed(result);
        return result;
    }

    /// @inheritdoc IERC1271
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address signer, ECDSA.RecoverError recoverError,) = ECDSA.tryRecoverCalldata(hash, signature);
        if (recoverError == ECDSA.RecoverError.NoError && signer == owner) return IERC1271.isValidSignature.selector;
        return 0xffffffff;
    }
}
