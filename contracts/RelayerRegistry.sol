// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ExactTransfer} from "./libraries/ExactTransfer.sol";
import {IRelayerRegistry} from "./interfaces/IRelayerRegistry.sol";

/// @title RelayerRegistry: the bonded operators allowed to serve calls
/// @notice A relayer registers an HTTP endpoint and a bond in the fee token. It stays active
/// while bonded at least `minBond()` and not leaving; leaving makes it inactive at once and
/// returns the bond after `unbondDelay()`. A rise of the minimum bond applies `unbondDelay()`
/// after the owner sets it, so that relayers can add bond or settle what they served first.
contract RelayerRegistry is IRelayerRegistry, Ownable2Step, Pausable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using ExactTransfer for IERC20;

    // ------------------------------------------------------------------ errors

    error RelayerRegistry_AlreadyRegistered(address relayer);
    error RelayerRegistry_NotRegistered(address relayer);
    error RelayerRegistry_BondTooLow(uint256 bond, uint256 minBond);
    error RelayerRegistry_BondTooHigh(uint256 bond, uint256 maxBond);
    error RelayerRegistry_ZeroAmount();
    error RelayerRegistry_Unbonding(address relayer, uint64 unbondAt);
    error RelayerRegistry_NotUnbonding(address relayer);
    error RelayerRegistry_UnbondPending(address relayer, uint64 unbondAt);

    // ------------------------------------------------------------------ events

    event RelayerRegistered(address indexed relayer, string endpoint, uint256 bond);
    event EndpointChanged(address indexed relayer, string endpoint);
    event BondAdded(address indexed relayer, uint256 amount, uint256 bond);
    event UnbondBegun(address indexed relayer, uint64 unbondAt);
    event BondWithdrawn(address indexed relayer, uint256 amount);
    event MinBondChanged(uint256 oldMinBond, uint256 newMinBond);
    /// @notice The minimum bond of the last `MinBondChanged` applies from `effectiveAt` on.
    event MinBondEffectiveAt(uint256 minBond, uint64 effectiveAt);

    // ------------------------------------------------------------------ storage

    struct Relayer {
        // Slot 0 answers `isActive`.
        uint128 bond;
        uint64 unbondAt; // 0 while serving; the time the bond comes back once leaving
        bool registered;
        string endpoint;
    }

    /// @notice The fee token bonds are held in.
    IERC20 public immutable token;
    /// @notice Seconds between `beginUnbond` and `withdrawBond`.
    uint64 public immutable unbondDelay;
    /// @dev The minimum bond in force and a scheduled one; one slot, read by every `isActive`.
    struct MinBond {
        uint112 current;
        uint112 next;
        uint32 nextAt; // 0: nothing scheduled; uint32 seconds last until the year 2106
    }

    MinBond private _minBond;

    mapping(address relayer => Relayer) private _relayers;

    // ------------------------------------------------------------------ constructor

    constructor(IERC20 token_, uint256 minBond_, uint64 unbondDelay_) Ownable(msg.sender) {
        token = token_;
        if (minBond_ > type(uint112).max) revert RelayerRegistry_BondTooHigh(minBond_, type(uint112).max);
        _minBond.current = uint112(minBond_);
        unbondDelay = unbondDelay_;
        emit MinBondChanged(0, minBond_);
    }

    // ------------------------------------------------------------------ external: relayers

    /// @notice Registers the caller as a relayer reachable at `endpoint`, pulling `bond` tokens.
    /// @param endpoint Base URL of the relayer's HTTP API.
    /// @param bond At least `minBond()`; the tokens received must equal it.
    function register(string calldata endpoint, uint256 bond) external whenNotPaused nonReentrant {
        Relayer storage relayer = _relayers[msg.sender];
        if (relayer.registered) revert RelayerRegistry_AlreadyRegistered(msg.sender);
        uint256 least = minBond();
        if (bond < least || bond == 0) revert RelayerRegistry_BondTooLow(bond, least);
        if (bond > type(uint128).max) revert RelayerRegistry_BondTooHigh(bond, type(uint128).max);

        relayer.registered = true;
        relayer.bond = uint128(bond);
        relayer.unbondAt = 0;
        relayer.endpoint = endpoint;
        emit RelayerRegistered(msg.sender, endpoint, bond);

        token.pullExact(msg.sender, bond);
    }

    /// @notice Changes the caller's advertised endpoint.
    function setEndpoint(string calldata endpoint) external {
        Relayer storage relayer = _registered(msg.sender);
        relayer.endpoint = endpoint;
        emit EndpointChanged(msg.sender, endpoint);
    }

    /// @notice Adds `amount` to the caller's bond; not while unbonding.
    function addBond(uint256 amount) external nonReentrant {
        Relayer storage relayer = _registered(msg.sender);
        if (amount == 0) revert RelayerRegistry_ZeroAmount();
        if (relayer.unbondAt != 0) revert RelayerRegistry_Unbonding(msg.sender, relayer.unbondAt);
        uint256 bond = relayer.bond + amount;
        if (bond > type(uint128).max) revert RelayerRegistry_BondTooHigh(bond, type(uint128).max);

        relayer.bond = uint128(bond);
        emit BondAdded(msg.sender, amount, bond);

        token.pullExact(msg.sender, amount);
    }

    /// @notice Starts leaving: the caller is inactive at once; the bond comes back after `unbondDelay()`.
    function beginUnbond() external {
        Relayer storage relayer = _registered(msg.sender);
        if (relayer.unbondAt != 0) revert RelayerRegistry_Unbonding(msg.sender, relayer.unbondAt);
        uint64 unbondAt = uint64(block.timestamp) + unbondDelay;
        relayer.unbondAt = unbondAt;
        emit UnbondBegun(msg.sender, unbondAt);
    }

    /// @notice Returns the whole bond once the unbonding delay has passed, and forgets the relayer.
    function withdrawBond() external nonReentrant {
        Relayer storage relayer = _registered(msg.sender);
        uint64 unbondAt = relayer.unbondAt;
        if (unbondAt == 0) revert RelayerRegistry_NotUnbonding(msg.sender);
        if (block.timestamp < unbondAt) revert RelayerRegistry_UnbondPending(msg.sender, unbondAt);

        uint256 amount = relayer.bond;
        delete _relayers[msg.sender];
        emit BondWithdrawn(msg.sender, amount);

        token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ external: owner

    /// @notice Sets the smallest bond of an active relayer. A cut applies at once; a rise applies
    /// `unbondDelay` from now (relayers below it then stop being active), replacing any rise
    /// still pending.
    function setMinBond(uint256 newMinBond) external onlyOwner {
        if (newMinBond > type(uint112).max) revert RelayerRegistry_BondTooHigh(newMinBond, type(uint112).max);
        uint256 inForce = minBond();
        emit MinBondChanged(inForce, newMinBond);
        uint64 effectiveAt = uint64(block.timestamp);
        if (newMinBond <= inForce) {
            _minBond = MinBond(uint112(newMinBond), 0, 0);
        } else {
            effectiveAt += unbondDelay;
            _minBond = MinBond(uint112(inForce), uint112(newMinBond), uint32(effectiveAt));
        }
        emit MinBondEffectiveAt(newMinBond, effectiveAt);
    }

    /// @notice Stops new relayer registrations; bonds, unbonding and withdrawals keep working.
    function pause() external onlyOwner {
        _pause();
    }

    /// @notice Lets new relayer registrations in again.
    function unpause() external onlyOwner {
        _unpause();
    }

    // ------------------------------------------------------------------ external: views

    /// @inheritdoc IRelayerRegistry
    function isActive(address relayer) public view returns (bool) {
        Relayer storage info = _relayers[relayer];
        return info.registered && info.unbondAt == 0 && info.bond >= minBond();
    }

    /// @notice The smallest bond of an active relayer, in force now.
    function minBond() public view returns (uint256) {
        MinBond memory least = _minBond;
        if (least.nextAt != 0 && block.timestamp >= least.nextAt) return least.next;
        return least.current;
    }

    /// @notice A scheduled rise of the minimum bond and when it applies (0, 0 when none is pending).
    function pendingMinBond() external view returns (uint256 newMinBond, uint64 effectiveAt) {
        MinBond memory least = _minBond;
        // nextAt == 0 is the "nothing scheduled" mark, not a balance.
        // slither-disable-next-line incorrect-equality
        if (least.nextAt == 0 || block.timestamp >= least.nextAt) return (0, 0);
        return (least.next, least.nextAt);
    }

    /// @notice A relayer's endpoint, bond, whether it is active, and when its bond comes back (0 if serving).
    function relayerInfo(address relayer)
        external
        view
        returns (string memory endpoint, uint256 bond, bool active, uint64 unbondAt)
    {
        Relayer storage info = _relayers[relayer];
        return (info.endpoint, info.bond, isActive(relayer), info.unbondAt);
    }

    // ------------------------------------------------------------------ internal

    function _registered(address account) private view returns (Relayer storage relayer) {
        relayer = _relayers[account];
        if (!relayer.registered) revert RelayerRegistry_NotRegistered(account);
    }
}
