// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title FeeSplit: the one rounding rule of Model Hub
/// @notice A call's price is split three ways. The treasury's part is
/// `price * protocolFeeBps / 10_000` and the relayer's `price * relayerFeeBps / 10_000`, each
/// rounded down; the payees take the rest, rounding remainders included, so the three parts
/// always sum to the price exactly. Within the payees' part, payee i > 0 receives
/// `payeePart * share_i / 10_000` rounded down, and the first payee receives what is left.
library FeeSplit {
    uint256 internal constant BPS = 10_000;

    /// @return protocolPart For the treasury.
    /// @return relayerPart For the relayer that served the call.
    /// @return payeePart For the model's payees; `price` minus the other two.
    function split(uint256 price, uint256 protocolFeeBps, uint256 relayerFeeBps)
        internal
        pure
        returns (uint256 protocolPart, uint256 relayerPart, uint256 payeePart)
    {
        // price < 2**160 (a call's price, or a channel's increase) and bps <= 10_000, so the
        // products cannot overflow, and the fee caps
        // keep protocolPart + relayerPart <= price.
        unchecked {
            protocolPart = price * protocolFeeBps / BPS;
            relayerPart = price * relayerFeeBps / BPS;
            payeePart = price - protocolPart - relayerPart;
        }
    }

    /// @return The part of `payeePart` owed to a payee other than the first, holding `share` bps.
    function shareOf(uint256 payeePart, uint256 share) internal pure returns (uint256) {
        unchecked {
            return payeePart * share / BPS;
        }
    }
}
