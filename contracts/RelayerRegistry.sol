// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ExactTransfer} from "./libraries/ExactTransfer.sol";
import {SortitionTree} from "./libraries/SortitionTree.sol";
import {IRelayerRegistry} from "./interfaces/IRelayerRegistry.sol";
import {IRelayerCourt} from "./interfaces/IRelayerCourt.sol";

/// @title RelayerRegistry: the bonded operators allowed to serve calls
/// @notice A relayer registers an HTTP endpoint and a bond in the fee token. It stays active
/// while bonded at least `minBond()` and not leaving; leaving makes it inactive at once and
/// returns the bond after `unbondDelay()`. A rise of the minimum bond applies `unbondDelay()`
/// after the owner sets it, so that relayers can add bond or settle what they served first.
///
/// Disputes (DisputeCourt, set once by the owner): the court holds the bonds of the relayers in
/// an open dispute (the accused and its jurors), which then cannot be withdrawn, slashes them,
/// and draws juries from the jury pool: every relayer weighted by its bond as of its last change,
/// a weight that stays frozen while any jury draw is pending so that nobody can reshape the pool
/// once the randomness is near.
contract RelayerRegistry is IRelayerRegistry, IRelayerCourt, Ownable2Step, Pausable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using ExactTransfer for IERC20;
    using SortitionTree for SortitionTree.Tree;

    // ------------------------------------------------------------------ errors

    error RelayerRegistry_AlreadyRegistered(address relayer);
    error RelayerRegistry_NotRegistered(address relayer);
    error RelayerRegistry_BondTooLow(uint256 bond, uint256 minBond);
    error RelayerRegistry_BondTooHigh(uint256 bond, uint256 maxBond);
    error RelayerRegistry_ZeroAmount();
    error RelayerRegistry_Unbonding(address relayer, uint64 unbondAt);
    error RelayerRegistry_NotUnbonding(address relayer);
    error RelayerRegistry_UnbondPending(address relayer, uint64 unbondAt);
    error RelayerRegistry_NotCourt(address account);
    error RelayerRegistry_CourtAlreadySet(address court);
    error RelayerRegistry_ZeroAddress();
    error RelayerRegistry_BondHeld(address relayer, uint256 holds);
    error RelayerRegistry_NotHeld(address relayer);
    error RelayerRegistry_NoDrawPending();

    // ------------------------------------------------------------------ events

    event RelayerRegistered(address indexed relayer, string endpoint, uint256 bond);
    event EndpointChanged(address indexed relayer, string endpoint);
    event BondAdded(address indexed relayer, uint256 amount, uint256 bond);
    event UnbondBegun(address indexed relayer, uint64 unbondAt);
    event BondWithdrawn(address indexed relayer, uint256 amount);
    event MinBondChanged(uint256 oldMinBond, uint256 newMinBond);
    /// @notice The minimum bond of the last `MinBondChanged` applies from `effectiveAt` on.
    event MinBondEffectiveAt(uint256 minBond, uint64 effectiveAt);
    event CourtSet(address indexed court);
    /// @notice The court holds `relayer`'s bond for one more open dispute (`holds` in all).
    event BondHeld(address indexed relayer, uint256 holds);
    /// @notice One dispute holding `relayer`'s bond ended (`holds` left).
    event BondReleased(address indexed relayer, uint256 holds);
    /// @notice The court took `amount` of `relayer`'s bond, leaving `bond`.
    event BondSlashed(address indexed relayer, uint256 amount, uint256 bond);
    /// @notice `relayer`'s weight in the jury pool is now `weight` (its bond while active, else 0).
    event PoolWeightChanged(address indexed relayer, uint256 weight);
    /// @notice A jury draw was announced (`pending` now wait; the pool's weights are frozen).
    event DrawPending(uint256 pending);
    /// @notice A jury was drawn (`pending` still wait; at 0 the weights move again).
    event DrawDone(uint256 pending);

    // ------------------------------------------------------------------ storage

    struct Relayer {
        // Slot 0 answers `isActive`.
        uint128 bond;
        uint64 unbondAt; // 0 while serving; the time the bond comes back once leaving
        bool registered;
        uint32 holds; // open disputes holding the bond (as the accused or a juror)
        uint24 slot; // in the jury pool; kept when the relayer leaves, reused when it comes back
        string endpoint;
    }

    /// @notice A bond counts in the jury pool up to this much (79 billion tokens of 18 decimals).
    uint256 public constant MAX_POOL_WEIGHT = type(uint96).max;

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

    /// @notice The DisputeCourt: the only account that may hold, release and slash bonds.
    address public court;
    /// @dev The jury pool: one slot per address that ever registered, weighted by bond while
    /// active (a weight is at most MAX_POOL_WEIGHT).
    SortitionTree.Tree private _pool;
    /// @dev Jury draws announced and not yet made: while any is, pool weights stay as they are.
    uint256 private _drawsPending;

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
        // 2**24 registrations cannot be paid for in gas.
        if (relayer.slot == 0) relayer.slot = uint24(_pool.append(msg.sender));
        _syncWeight(msg.sender);

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
        _syncWeight(msg.sender);

        token.pullExact(msg.sender, amount);
    }

    /// @notice Starts leaving: the caller is inactive at once; the bond comes back after `unbondDelay()`.
    function beginUnbond() external {
        Relayer storage relayer = _registered(msg.sender);
        if (relayer.unbondAt != 0) revert RelayerRegistry_Unbonding(msg.sender, relayer.unbondAt);
        uint64 unbondAt = uint64(block.timestamp) + unbondDelay;
        relayer.unbondAt = unbondAt;
        emit UnbondBegun(msg.sender, unbondAt);
        _syncWeight(msg.sender);
    }

    /// @notice Returns the whole bond once the unbonding delay has passed, and forgets the relayer.
    function withdrawBond() external nonReentrant {
        Relayer storage relayer = _registered(msg.sender);
        uint64 unbondAt = relayer.unbondAt;
        if (unbondAt == 0) revert RelayerRegistry_NotUnbonding(msg.sender);
        if (block.timestamp < unbondAt) revert RelayerRegistry_UnbondPending(msg.sender, unbondAt);
        if (relayer.holds != 0) revert RelayerRegistry_BondHeld(msg.sender, relayer.holds);

        uint256 amount = relayer.bond;
        uint24 slot = relayer.slot;
        delete _relayers[msg.sender];
        _relayers[msg.sender].slot = slot;
        emit BondWithdrawn(msg.sender, amount);
        _syncWeight(msg.sender);

        token.safeTransfer(msg.sender, amount);
    }

    /// @notice Brings `relayer`'s weight in the jury pool up to date (its bond while active, else
    /// 0); anyone may call it. Changes made while a jury draw was pending wait for this, or for
    /// the relayer's next bond change, as do minimum-bond changes that made it (in)active.
    function syncWeight(address relayer) external {
        _syncWeight(relayer);
    }

    // ------------------------------------------------------------------ external: the court

    /// @notice Holds the bonds of `accounts` (registered relayers) for one more open dispute: a
    /// held bond cannot be withdrawn.
    function holdBonds(address[] calldata accounts) external onlyCourt {
        for (uint256 i; i < accounts.length; ++i) {
            Relayer storage relayer = _registered(accounts[i]);
            uint32 holds = relayer.holds + 1;
            relayer.holds = holds;
            emit BondHeld(accounts[i], holds);
        }
    }

    /// @notice Ends one hold of each of `accounts`' bonds.
    function releaseBonds(address[] calldata accounts) external onlyCourt {
        for (uint256 i; i < accounts.length; ++i) {
            Relayer storage relayer = _relayers[accounts[i]];
            uint32 holds = relayer.holds;
            if (holds == 0) revert RelayerRegistry_NotHeld(accounts[i]);
            relayer.holds = holds - 1;
            emit BondReleased(accounts[i], holds - 1);
        }
    }

    /// @notice Takes up to `amount` of `account`'s bond (all of it if less) and sends it to the
    /// court; a relayer left below the minimum bond is no longer active.
    /// @return taken What was taken and sent.
    function slash(address account, uint256 amount) external onlyCourt nonReentrant returns (uint256 taken) {
        Relayer storage relayer = _relayers[account];
        uint256 bond = relayer.bond;
        taken = amount < bond ? amount : bond;
        if (taken == 0) return 0;
        unchecked {
            relayer.bond = uint128(bond - taken);
        }
        emit BondSlashed(account, taken, bond - taken);
        _syncWeight(account);
        token.safeTransfer(msg.sender, taken);
    }

    /// @notice Announces a jury draw: pool weights stay frozen until it is made (`drawDone`).
    function drawPending() external onlyCourt {
        uint256 pending = _drawsPending + 1;
        _drawsPending = pending;
        emit DrawPending(pending);
    }

    /// @notice A draw announced with `drawPending` was made.
    function drawDone() external onlyCourt {
        uint256 pending = _drawsPending;
        if (pending == 0) revert RelayerRegistry_NoDrawPending();
        _drawsPending = pending - 1;
        emit DrawDone(pending - 1);
    }

    // ------------------------------------------------------------------ external: owner

    /// @notice Names the DisputeCourt, once.
    function setCourt(address court_) external onlyOwner {
        if (court_ == address(0)) revert RelayerRegistry_ZeroAddress();
        if (court != address(0)) revert RelayerRegistry_CourtAlreadySet(court);
        court = court_;
        emit CourtSet(court_);
    }

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

    /// @notice How many open disputes hold `relayer`'s bond.
    function bondHolds(address relayer) external view returns (uint256) {
        return _relayers[relayer].holds;
    }

    /// @notice `relayer`'s weight in the jury pool (0 if it never registered).
    function poolWeight(address relayer) external view returns (uint256) {
        uint256 slot = _relayers[relayer].slot;
        return slot == 0 ? 0 : _pool.leaves[slot].weight;
    }

    /// @notice The sum of the jury pool's weights, and the jury draws pending (weights frozen while > 0).
    function poolState() external view returns (uint256 totalWeight, uint256 drawsPending) {
        return (_pool.total, _drawsPending);
    }

    /// @notice Up to `seats` distinct relayers drawn from the jury pool by weight from `seed`,
    /// never one of `excluded`; a drawn slot whose relayer has since left leaves its seat empty
    /// (so that leaving cannot change who else is drawn). Fewer when the pool runs out.
    /// @param seed The randomness.
    /// @param seats How many to draw.
    /// @param excluded Accounts never drawn (the parties of a dispute).
    /// @return jurors The drawn relayers, in draw order.
    function drawJurors(bytes32 seed, uint256 seats, address[] calldata excluded)
        external
        view
        returns (address[] memory jurors)
    {
        uint256[] memory skip = new uint256[](excluded.length);
        for (uint256 i; i < excluded.length; ++i) {
            skip[i] = _relayers[excluded[i]].slot;
        }
        uint256[] memory slots = _pool.draw(seed, seats, skip);
        jurors = new address[](slots.length);
        uint256 n;
        for (uint256 i; i < slots.length; ++i) {
            address drawn = _pool.leaves[slots[i]].owner;
            if (_relayers[drawn].registered) jurors[n++] = drawn;
        }
        assembly ("memory-safe") {
            mstore(jurors, n)
        }
    }

    // ------------------------------------------------------------------ internal

    modifier onlyCourt() {
        if (msg.sender != court) revert RelayerRegistry_NotCourt(msg.sender);
        _;
    }

    /// @dev Sets `account`'s pool weight to its bond while active, else 0; not while a draw is
    /// pending (the change then waits for `syncWeight` or the relayer's next bond change).
    function _syncWeight(address account) private {
        if (_drawsPending != 0) return;
        uint256 slot = _relayers[account].slot;
        if (slot == 0) return;
        uint256 weight = isActive(account) ? _relayers[account].bond : 0;
        if (weight > MAX_POOL_WEIGHT) weight = MAX_POOL_WEIGHT;
        if (_pool.leaves[slot].weight == weight) return;
        _pool.set(slot, uint96(weight));
        emit PoolWeightChanged(account, weight);
    }

    function _registered(address account) private view returns (Relayer storage relayer) {
        relayer = _relayers[account];
        if (!relayer.registered) revert RelayerRegistry_NotRegistered(account);
    }
}
