// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title The few Foundry cheatcodes these tests use
/// @notice forge-std is not published on npm by its authors (only an old unofficial copy) and
/// nothing may be fetched from git at build time, so this is the subset of its `Vm` interface
/// that the invariant tests need, with the same signatures.
interface Vm {
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    function addr(uint256 privateKey) external pure returns (address);
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function prank(address sender) external;
    function startPrank(address sender) external;
    function stopPrank() external;
    function warp(uint256 timestamp) external;
    function roll(uint256 newHeight) external;
    function prevrandao(bytes32 newPrevrandao) external;
    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory);
    function label(address account, string calldata name) external;
    function envOr(string calldata name, bool defaultValue) external view returns (bool);
}

/// @dev The cheatcode address: address(uint160(uint256(keccak256("hevm cheat code")))).
abstract contract WithVm {
    Vm internal constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);
}

/// @dev What forge reads from an invariant test to choose the calls it fuzzes (forge-std's
/// StdInvariant has the same shape).
struct FuzzSelector {
    address addr;
    bytes4[] selectors;
}
