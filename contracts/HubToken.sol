// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title HubToken (tOPG), the fee token of dev networks
/// @notice A plain ERC-20 whose `mint` is open to anyone: a faucet for local chains and testnets.
/// The deploy script refuses to deploy it outside a dev network.
contract HubToken is ERC20 {
    constructor() ERC20("Model Hub Test Token", "tOPG") {}

    /// @notice Mints `amount` base units to `to`; anyone may call it.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
