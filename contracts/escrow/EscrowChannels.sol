// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EscrowBase} from "./EscrowBase.sol";

/// @title EscrowChannels: what has been settled of each receipt channel
/// @notice A channel is (caller, relayer, model); it keeps the totals of its newest settled
/// receipt, so that a receipt pays only its increase over them and a replay pays nothing.
abstract contract EscrowChannels is EscrowBase {
    // ------------------------------------------------------------------ storage

    /// @dev What has been settled of a channel (caller, relayer, model): its latest settled
    /// receipt's totals, and when that was.
    struct Channel {
        uint64 calls;
        uint160 amount;
        uint32 settledAt;
    }

    // Written through storage pointers, which Slither does not follow.
    // slither-disable-next-line uninitialized-state
    mapping(bytes32 channelKey => Channel) internal _channels;

    // ------------------------------------------------------------------ external

    /// @notice What has been settled of the channel (caller, relayer, model): the totals of its
    /// newest settled receipt.
    /// @param caller The channel's caller.
    /// @param relayer The channel's relayer.
    /// @param modelId The channel's model.
    /// @return calls The settled receipt's call count.
    /// @return amount The settled receipt's amount.
    function channel(address caller, address relayer, uint256 modelId)
        external
        view
        returns (uint256 calls, uint256 amount)
    {
        Channel storage settled = _channels[_channelKey(caller, relayer, modelId)];
        return (settled.calls, settled.amount);
    }

    /// @notice What has been settled of the channel (caller, relayer, model), and when it last
    /// settled: the anchor of the dispute window of its calls (a relayer settles only while active).
    /// @param caller The channel's caller.
    /// @param relayer The channel's relayer.
    /// @param modelId The channel's model.
    /// @return calls The settled receipt's call count.
    /// @return amount The settled receipt's amount.
    /// @return settledAt When it settled (0: never).
    function channelState(address caller, address relayer, uint256 modelId)
        external
        view
        returns (uint256 calls, uint256 amount, uint64 settledAt)
    {
        Channel storage settled = _channels[_channelKey(caller, relayer, modelId)];
        return (settled.calls, settled.amount, settled.settledAt);
    }

    // ------------------------------------------------------------------ internal

    function _channelKey(address caller, address relayer, uint256 modelId) internal pure returns (bytes32) {
        return keccak256(abi.encode(caller, relayer, modelId));
    }
}
