// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {EscrowBase} from "./EscrowBase.sol";

/// @title EscrowTerms: the escrow's timings, and what its owner may change
/// @notice The fees (changed only with notice: a change applies `termsNoticePeriod` after it is
/// made, which is at least `requestTimeout`, so every call paid before settles under the old
/// fees, and at least `withdrawalDelay`, so relayers settle their receipts first), the treasury,
/// and the pause of new requests.
abstract contract EscrowTerms is EscrowBase, Ownable2Step, Pausable {
    // ------------------------------------------------------------------ storage

    /// @dev The fees in force, and a change waiting for `nextAt`; one slot.
    struct FeeConfig {
        address treasury;
        uint16 protocolFeeBps;
        uint16 relayerFeeBps;
        uint16 nextProtocolFeeBps;
        uint16 nextRelayerFeeBps;
        uint32 nextAt; // 0: no change pending; uint32 seconds last until the year 2106
    }

    /// @notice The most `protocolFeeBps` may be set to (10%).
    uint16 public constant MAX_PROTOCOL_FEE_BPS = 1_000;
    /// @notice The most `relayerFeeBps` may be set to (30%).
    uint16 public constant MAX_RELAYER_FEE_BPS = 3_000;

    /// @notice Seconds a relayer has to serve a call before the caller can take a refund.
    uint64 public immutable requestTimeout;
    /// @notice Seconds between `announceRelease` and `release` of a reservation, and before a
    /// change of receipt signer applies.
    uint64 public immutable withdrawalDelay;
    /// @notice Seconds between a fee change and the settlements it applies to:
    /// max(`requestTimeout`, `withdrawalDelay`).
    uint64 public immutable termsNoticePeriod;

    FeeConfig private _fees;

    // ------------------------------------------------------------------ constructor

    /// @param treasury_ Receives the protocol fee.
    /// @param protocolFeeBps_ At most 1_000 (10%).
    /// @param relayerFeeBps_ At most 3_000 (30%).
    /// @param requestTimeout_ Seconds from a request to its deadline.
    /// @param withdrawalDelay_ Seconds a reservation waits to be released, and a signer change to apply.
    constructor(
        address treasury_,
        uint16 protocolFeeBps_,
        uint16 relayerFeeBps_,
        uint64 requestTimeout_,
        uint64 withdrawalDelay_
    ) Ownable(msg.sender) {
        requestTimeout = requestTimeout_;
        withdrawalDelay = withdrawalDelay_;
        termsNoticePeriod = requestTimeout_ > withdrawalDelay_ ? requestTimeout_ : withdrawalDelay_;
        setTreasury(treasury_);
        _checkFees(protocolFeeBps_, relayerFeeBps_);
        _fees.protocolFeeBps = protocolFeeBps_;
        _fees.relayerFeeBps = relayerFeeBps_;
        emit ProtocolFeeChanged(0, protocolFeeBps_);
        emit RelayerFeeChanged(0, relayerFeeBps_);
        emit FeesEffectiveAt(protocolFeeBps_, relayerFeeBps_, uint64(block.timestamp));
    }

    // ------------------------------------------------------------------ external

    /// @notice Sets the treasury's share of each fee, at most 1_000 bps; applies to settlements
    /// from `termsNoticePeriod` on (replacing a change still pending).
    /// @param bps The new share, in basis points of each price.
    function setProtocolFeeBps(uint16 bps) external onlyOwner {
        (uint16 protocolBps, uint16 relayerBps) = _scheduledFees();
        _checkFees(bps, relayerBps);
        emit ProtocolFeeChanged(protocolBps, bps);
        _scheduleFees(bps, relayerBps);
    }

    /// @notice Sets the serving relayer's share of each fee, at most 3_000 bps; applies to
    /// settlements from `termsNoticePeriod` on (replacing a change still pending).
    /// @param bps The new share, in basis points of each price.
    function setRelayerFeeBps(uint16 bps) external onlyOwner {
        (uint16 protocolBps, uint16 relayerBps) = _scheduledFees();
        _checkFees(protocolBps, bps);
        emit RelayerFeeChanged(relayerBps, bps);
        _scheduleFees(protocolBps, bps);
    }

    /// @notice Sets the account that earns the protocol fee from now on; past earnings stay where they are.
    /// @param newTreasury The new treasury; not the zero address.
    function setTreasury(address newTreasury) public onlyOwner {
        if (newTreasury == address(0)) revert InferenceEscrow_ZeroAddress();
        emit TreasuryChanged(_fees.treasury, newTreasury);
        _fees.treasury = newTreasury;
    }

    /// @notice Stops new requests. Deposits, withdrawals, settlement, rejections and refunds go on.
    function pause() external onlyOwner {
        _pause();
    }

    /// @notice Lets new requests in again.
    function unpause() external onlyOwner {
        _unpause();
    }

    /// @notice The account earning the protocol fee.
    /// @return The treasury.
    function treasury() external view returns (address) {
        return _fees.treasury;
    }

    /// @notice The treasury's share of each fee in force now, in bps.
    /// @return The share in force.
    function protocolFeeBps() external view returns (uint16) {
        return _feesInForce().protocolFeeBps;
    }

    /// @notice The serving relayer's share of each fee in force now, in bps.
    /// @return The share in force.
    function relayerFeeBps() external view returns (uint16) {
        return _feesInForce().relayerFeeBps;
    }

    /// @notice A fee change waiting for `effectiveAt` (0, 0, 0 when none is pending).
    /// @return protocolBps The treasury's share from `effectiveAt` on.
    /// @return relayerBps The serving relayer's share from `effectiveAt` on.
    /// @return effectiveAt When the change applies.
    function pendingFees() external view returns (uint16 protocolBps, uint16 relayerBps, uint64 effectiveAt) {
        FeeConfig memory fees = _fees;
        if (fees.nextAt == 0 || block.timestamp >= fees.nextAt) return (0, 0, 0);
        return (fees.nextProtocolFeeBps, fees.nextRelayerFeeBps, fees.nextAt);
    }

    // ------------------------------------------------------------------ internal

    function _feesInForce() internal view returns (FeeConfig memory fees) {
        fees = _fees;
        if (fees.nextAt != 0 && block.timestamp >= fees.nextAt) {
            fees.protocolFeeBps = fees.nextProtocolFeeBps;
            fees.relayerFeeBps = fees.nextRelayerFeeBps;
        }
    }

    /// @dev The fees the next change starts from: a pending change, or those in force.
    function _scheduledFees() private view returns (uint16 protocolBps, uint16 relayerBps) {
        FeeConfig memory fees = _fees;
        if (fees.nextAt != 0) return (fees.nextProtocolFeeBps, fees.nextRelayerFeeBps);
        return (fees.protocolFeeBps, fees.relayerFeeBps);
    }

    function _scheduleFees(uint16 protocolBps, uint16 relayerBps) private {
        FeeConfig memory inForce = _feesInForce();
        uint64 effectiveAt = uint64(block.timestamp + termsNoticePeriod);
        FeeConfig storage fees = _fees;
        fees.protocolFeeBps = inForce.protocolFeeBps;
        fees.relayerFeeBps = inForce.relayerFeeBps;
        fees.nextProtocolFeeBps = protocolBps;
        fees.nextRelayerFeeBps = relayerBps;
        // uint32 seconds last until the year 2106.
        fees.nextAt = uint32(effectiveAt);
        emit FeesEffectiveAt(protocolBps, relayerBps, effectiveAt);
    }

    function _checkFees(uint16 protocolBps, uint16 relayerBps) private pure {
        if (protocolBps > MAX_PROTOCOL_FEE_BPS) revert InferenceEscrow_FeeTooHigh(protocolBps, MAX_PROTOCOL_FEE_BPS);
        if (relayerBps > MAX_RELAYER_FEE_BPS) revert InferenceEscrow_FeeTooHigh(relayerBps, MAX_RELAYER_FEE_BPS);
    }
}
