// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {SettlementRecord} from "../libraries/SettlementRecord.sol";
import {EscrowCredit} from "./EscrowCredit.sol";

/// @title EscrowRequestRecords: what the escrow keeps of each on-chain request
/// @notice A request's id, locked price, model, input hash, deadline and status; when it ends,
/// only its status is kept (and its caller, which is part of the id), and for a settled request
/// the record of its settlement (SettlementRecord), which the dispute court checks challenges by.
abstract contract EscrowRequestRecords is EscrowCredit {
    // ------------------------------------------------------------------ storage

    /// @dev One call. Slot 0 and the input hash are all that settlement reads; the caller is the
    /// high 160 bits of the request id. `relayer` is written only for designated requests. When a
    /// request ends, slot 0 keeps only the status and the rest is cleared, for the storage refund;
    /// a settled request's slot 0 holds its settlement record in the 240 bits below the status
    /// (price, modelId, version and deadline then read as that record: `getRequest` masks them).
    struct Request {
        uint128 price;
        uint48 modelId;
        uint32 version;
        uint32 deadline; // uint32 seconds last until the year 2106
        uint8 status;
        bool designated;
        bytes32 inputHash;
        address relayer;
    }

    /// @notice Status of a request waiting to be served.
    uint8 public constant STATUS_PENDING = 1;
    /// @notice Status of a request settled by an attestation.
    uint8 public constant STATUS_FULFILLED = 2;
    /// @notice Status of a request its designated relayer rejected (refunded).
    uint8 public constant STATUS_REJECTED = 3;
    /// @notice Status of a request refunded after its deadline.
    uint8 public constant STATUS_REFUNDED = 4;

    // Written through storage pointers, which Slither does not follow.
    // slither-disable-next-line uninitialized-state
    mapping(uint256 requestId => Request) internal _requests;

    // ------------------------------------------------------------------ external

    /// @notice One request. After it ends only `status` (and the caller, which is part of the
    /// id) is kept; the rest reads as zero.
    /// @dev status: 1 pending, 2 fulfilled, 3 rejected, 4 refunded; unknown ids revert.
    /// @param requestId A known request.
    /// @return caller Who paid for it.
    /// @return modelId The model it runs.
    /// @return version The version of the model it runs.
    /// @return price The price it locked.
    /// @return inputHash keccak256 of its input.
    /// @return deadline The last second it can be fulfilled.
    /// @return status Its state.
    function getRequest(uint256 requestId)
        external
        view
        returns (
            address caller,
            uint256 modelId,
            uint32 version,
            uint256 price,
            bytes32 inputHash,
            uint64 deadline,
            uint8 status
        )
    {
        Request storage r = _requests[requestId];
        status = r.status;
        if (status == 0) revert InferenceEscrow_UnknownRequest(requestId);
        caller = _callerOf(requestId);
        if (status != STATUS_PENDING) return (caller, 0, 0, 0, bytes32(0), 0, status);
        return (caller, r.modelId, r.version, r.price, r.inputHash, r.deadline, status);
    }

    /// @notice A request's status and, once settled, the record of its settlement: the top 240
    /// bits of keccak256(abi.encode(requestId, modelId, version, price, inputHash, outputHash,
    /// relayer, settledAt)), as a number (0 unless settled).
    /// @param requestId Any request id.
    /// @return status 0 unknown, 1 pending, 2 fulfilled, 3 rejected, 4 refunded.
    /// @return record The settlement record (SettlementRecord.hash).
    function settlementRecord(uint256 requestId) external view returns (uint8 status, uint256 record) {
        Request storage r = _requests[requestId];
        status = r.status;
        if (status != STATUS_FULFILLED) return (status, 0);
        uint256 word;
        assembly ("memory-safe") {
            word := sload(r.slot)
        }
        record = word & SettlementRecord.MASK;
    }

    /// @notice The relayer a pending request was designated to (address(0): any active relayer).
    /// @param requestId Any request id.
    /// @return The designated relayer.
    function designatedRelayer(uint256 requestId) external view returns (address) {
        return _requests[requestId].relayer;
    }

    /// @notice The id `caller`'s next request will have.
    /// @param caller Any account.
    /// @return The id of its next request.
    function nextRequestId(address caller) external view returns (uint256) {
        return _requestId(caller, _accounts[caller].requests + 1);
    }

    // ------------------------------------------------------------------ internal

    /// @dev Ends a request: keeps only its status and frees the rest of its storage for the gas
    /// refund. Returns the price it had locked.
    function _end(Request storage request, uint8 newStatus) internal returns (uint256 price) {
        price = request.price;
        bool designated = request.designated;
        request.price = 0;
        request.modelId = 0;
        request.version = 0;
        request.deadline = 0;
        request.status = newStatus;
        request.designated = false;
        request.inputHash = bytes32(0);
        if (designated) request.relayer = address(0);
    }

    /// @dev Ends a request as settled: slot 0 becomes its status above `record` (a 240-bit
    /// SettlementRecord), in one write; the input hash and a designated relayer are freed.
    function _endSettled(Request storage request, uint256 record) internal returns (uint256 price) {
        price = request.price;
        bool designated = request.designated;
        uint256 word = uint256(STATUS_FULFILLED) << 240 | record;
        assembly ("memory-safe") {
            sstore(request.slot, word)
        }
        request.inputHash = bytes32(0);
        if (designated) request.relayer = address(0);
    }

    function _requestId(address caller, uint256 number) internal pure returns (uint256) {
        return uint256(uint160(caller)) << 96 | number;
    }

    function _callerOf(uint256 requestId) internal pure returns (address) {
        return address(uint160(requestId >> 96));
    }
}
