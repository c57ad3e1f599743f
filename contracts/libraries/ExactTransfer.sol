// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title ExactTransfer: pull tokens and insist that exactly the asked amount arrived
/// @notice Credit and bonds are booked at face value, so a token that takes a fee on transfer
/// (or otherwise delivers less) must be refused rather than leave the books short.
library ExactTransfer {
    using SafeERC20 for IERC20;

    error ExactTransfer_AmountMismatch(uint256 expected, uint256 received);

    /// @notice Moves `amount` of `token` from `from` to this contract, or reverts.
    function pullExact(IERC20 token, address from, uint256 amount) internal {
        uint256 before = token.balanceOf(address(this));
        // Every caller passes `from = msg.sender` (deposits, bonds): no one pulls another's tokens.
        // slither-disable-next-line arbitrary-send-erc20
        token.safeTransferFrom(from, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != amount) revert ExactTransfer_AmountMismatch(amount, received);
    }
}
