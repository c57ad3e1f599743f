// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SettlementRecord} from "../libraries/SettlementRecord.sol";
import {EscrowCredit} from "./EscrowCredit.sol";
import {EscrowEarnings} from "./EscrowEarnings.sol";
import {EscrowModelStats} from "./EscrowModelStats.sol";
import {EscrowRequestRecords} from "./EscrowRequestRecords.sol";
import {EscrowTerms} from "./EscrowTerms.sol";

/// @title EscrowRequests: calls paid on chain, one escrowed price each
/// @notice A request locks the model's current price from the caller's free credit; a bonded
/// relayer's signed attestation releases it as earnings; a rejection by the designated relayer
/// or a missed deadline returns it to the caller's credit. Each request ends exactly once.
/// @dev Bases in InferenceEscrow's storage order.
abstract contract EscrowRequests is EscrowTerms, EscrowCredit, EscrowEarnings, EscrowRequestRecords, EscrowModelStats {
    // ------------------------------------------------------------------ storage

    /// @notice `reject` reason: the input does not fit the model.
    uint8 public constant REJECT_BAD_INPUT = 1;
    /// @notice `reject` reason: the model failed on the input.
    uint8 public constant REJECT_MODEL_ERROR = 2;
    /// @notice `reject` reason: the model file is unavailable or does not match its digest.
    uint8 public constant REJECT_ARTIFACT_UNAVAILABLE = 3;
    /// @notice `reject` reason: any other.
    uint8 public constant REJECT_OTHER = 4;

    /// @notice The EIP-712 type hash of `Attestation`.
    bytes32 public constant ATTESTATION_TYPEHASH = keccak256(
        "Attestation(uint256 requestId,uint256 modelId,uint32 version,bytes32 inputHash,bytes32 outputHash)"
    );

    // ------------------------------------------------------------------ external

    /// @notice Pays for one call any active relayer may serve: locks the model's current price
    /// from the caller's credit. Nobody may reject it; unserved, it is refunded after its deadline.
    /// @param modelId The model to run.
    /// @param version The version to run; 0 means the latest, resolved now (pass the version
    /// you checked to be sure the owner did not publish another one first).
    /// @param input The input JSON, UTF-8; relayers read it from the event.
    /// @param maxPrice The most the caller accepts to pay; protects against a price change.
    /// @return requestId The id relayers and the caller refer to the call by: the caller's
    /// address in the high 160 bits and its request number (1, 2, ...) in the low 96, so a
    /// caller knows the id of its next request in advance (`nextRequestId`).
    function requestInference(uint256 modelId, uint32 version, bytes calldata input, uint256 maxPrice)
        external
        whenNotPaused
        returns (uint256 requestId)
    {
        return _request(modelId, version, input, maxPrice, address(0));
    }

    /// @notice Pays for one call that only `relayer` (active now) may serve; it may also reject
    /// it, which refunds the caller at once.
    /// @param modelId The model to run.
    /// @param version The version to run; 0 means the latest, resolved now.
    /// @param input The input JSON, UTF-8; relayers read it from the event.
    /// @param maxPrice The most the caller accepts to pay.
    /// @param relayer The only relayer that may serve or reject the call.
    /// @return requestId The call's id, as for `requestInference`.
    function requestInferenceVia(uint256 modelId, uint32 version, bytes calldata input, uint256 maxPrice, address relayer)
        external
        whenNotPaused
        returns (uint256 requestId)
    {
        if (!relayers.isActive(relayer)) revert InferenceEscrow_NotActiveRelayer(relayer);
        requestId = _request(modelId, version, input, maxPrice, relayer);
        emit RelayerDesignated(requestId, relayer);
    }

    /// @notice Settles one call with a relayer's signed attestation; anyone may submit it.
    /// @param att The attestation; must match the request's model, version and input hash.
    /// @param signature An active relayer's EIP-712 signature of `att` (65 bytes).
    function fulfill(Attestation calldata att, bytes calldata signature) external {
        Settlement memory run = _startSettlement();
        (SkipReason reason, address signer) = _settle(run, att, signature);
        if (reason != SkipReason.None) _revertFor(reason, att, signer);
        _finishSettlement(run);
    }

    /// @notice Settles many calls; an item that cannot settle is skipped with `InferenceSkipped`.
    /// @param atts The attestations, as for `fulfill`.
    /// @param signatures Each attestation's signature, in the same order.
    function fulfillBatch(Attestation[] calldata atts, bytes[] calldata signatures) external {
        uint256 count = atts.length;
        if (signatures.length != count) revert InferenceEscrow_LengthMismatch(count, signatures.length);
        Settlement memory run = _startSettlement();
        for (uint256 i; i < count; ++i) {
            (SkipReason reason,) = _settle(run, atts[i], signatures[i]);
            if (reason != SkipReason.None) emit InferenceSkipped(atts[i].requestId, uint8(reason));
        }
        _finishSettlement(run);
    }

    /// @notice The relayer a call was designated to declares it unservable; the caller gets the
    /// full price back. Calls open to every relayer cannot be rejected (they are refunded after
    /// their deadline), so that no relayer can refund a call another one has answered.
    /// @param requestId The pending call designated to the sender.
    /// @param reason 1 input does not fit the model, 2 model error, 3 model file unavailable or
    /// not matching its digest, 4 other.
    function reject(uint256 requestId, uint8 reason) external {
        if (reason < REJECT_BAD_INPUT || reason > REJECT_OTHER) revert InferenceEscrow_InvalidRejectReason(reason);
        Request storage request = _requests[requestId];
        if (!request.designated || request.relayer != msg.sender) {
            if (request.status == 0) revert InferenceEscrow_UnknownRequest(requestId);
            if (request.status == STATUS_PENDING) revert InferenceEscrow_NotDesignatedRelayer(requestId, msg.sender);
        }
        _returnToCaller(requestId, STATUS_REJECTED);
        emit InferenceRejected(requestId, msg.sender, reason);
    }

    /// @notice Returns the price of a call nobody served in time to its caller's credit.
    /// @param requestId A pending call past its deadline; anyone may ask.
    function refund(uint256 requestId) external {
        Request storage request = _requests[requestId];
        // Only a pending request has a deadline (a settled one's slot holds its record).
        if (request.status == STATUS_PENDING && block.timestamp <= request.deadline) {
            revert InferenceEscrow_DeadlineNotPassed(requestId, request.deadline);
        }
        _returnToCaller(requestId, STATUS_REFUNDED);
        emit InferenceRefunded(requestId);
    }

    /// @notice The EIP-712 digest a relayer signs for `att` (domain "ModelHub", version "1").
    /// @param att The attestation.
    /// @return The digest.
    function hashAttestation(Attestation calldata att) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(ATTESTATION_TYPEHASH, att.requestId, att.modelId, att.version, att.inputHash, att.outputHash))
        );
    }

    // ------------------------------------------------------------------ internal

    function _request(uint256 modelId, uint32 version, bytes calldata input, uint256 maxPrice, address relayer)
        private
        returns (uint256 requestId)
    {
        (uint256 price, uint32 latestVersion, bool active) = registry.callTerms(modelId);
        if (!active) revert InferenceEscrow_ModelInactive(modelId);
        if (version == 0) version = latestVersion;
        else if (version > latestVersion) revert InferenceEscrow_UnknownVersion(modelId, version, latestVersion);
        if (price > maxPrice) revert InferenceEscrow_PriceAboveMax(modelId, price, maxPrice);

        CallerAccount memory account = _accounts[msg.sender];
        if (account.credit < price) revert InferenceEscrow_InsufficientCredit(msg.sender, account.credit, price);
        unchecked {
            // price <= credit, and 2**96 requests cannot be paid for in gas.
            account.credit -= uint160(price);
            account.requests += 1;
        }
        _accounts[msg.sender] = account;
        requestId = _requestId(msg.sender, account.requests);

        bytes32 inputHash = keccak256(input);
        Request storage request = _requests[requestId];
        // The registry caps prices at 2**128 - 1 and numbers models from 1, so neither cast
        // truncates; uint32 seconds last until the year 2106.
        request.price = uint128(price);
        request.modelId = uint48(modelId);
        request.version = version;
        request.deadline = uint32(block.timestamp + requestTimeout);
        request.status = STATUS_PENDING;
        request.inputHash = inputHash;
        if (relayer != address(0)) {
            request.designated = true;
            request.relayer = relayer;
        }
        emit InferenceRequested(requestId, modelId, version, msg.sender, price, inputHash, input);
    }

    /// @dev Checks one attestation and, if it holds, releases its request's price. Returns why
    /// it did not settle (SkipReason.None when it did) and the recovered signer.
    function _settle(Settlement memory run, Attestation calldata att, bytes calldata signature)
        private
        returns (SkipReason, address)
    {
        Request storage request = _requests[att.requestId];
        if (request.status != STATUS_PENDING) return (SkipReason.NotPending, address(0));
        if (block.timestamp > request.deadline) return (SkipReason.DeadlinePassed, address(0));
        uint256 modelId = request.modelId;
        if (att.modelId != modelId || att.version != request.version || att.inputHash != request.inputHash) {
            return (SkipReason.Mismatch, address(0));
        }
        // The third value only details the error, which is reported as InvalidSignature either way.
        // slither-disable-next-line unused-return
        (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecoverCalldata(hashAttestation(att), signature);
        if (error != ECDSA.RecoverError.NoError) return (SkipReason.InvalidSignature, address(0));
        if (request.designated && signer != request.relayer) return (SkipReason.NotDesignated, signer);
        if (signer != run.activeRelayer) {
            if (!relayers.isActive(signer)) return (SkipReason.NotActiveRelayer, signer);
            run.activeRelayer = signer;
        }

        // Effects: end the request, keeping the record of its settlement, before booking the money.
        uint256 price = _endSettled(
            request,
            SettlementRecord.hash(
                SettlementRecord.Facts(
                    att.requestId, modelId, att.version, request.price, att.inputHash, att.outputHash, signer,
                    uint64(block.timestamp)
                )
            )
        );

        ModelStats storage stats = _stats[modelId];
        stats.calls += 1;
        stats.revenue += price;

        _bookSplit(run, signer, modelId, price);
        emit InferenceFulfilled(att.requestId, signer, att.outputHash);
        return (SkipReason.None, signer);
    }

    function _revertFor(SkipReason reason, Attestation calldata att, address signer) private view {
        uint256 requestId = att.requestId;
        if (reason == SkipReason.NotPending) {
            uint8 status = _requests[requestId].status;
            if (status == 0) revert InferenceEscrow_UnknownRequest(requestId);
            revert InferenceEscrow_NotPending(requestId, status);
        }
        if (reason == SkipReason.DeadlinePassed) {
            revert InferenceEscrow_DeadlinePassed(requestId, _requests[requestId].deadline);
        }
        if (reason == SkipReason.Mismatch) revert InferenceEscrow_AttestationMismatch(requestId);
        if (reason == SkipReason.InvalidSignature) revert InferenceEscrow_InvalidSignature(requestId);
        if (reason == SkipReason.NotDesignated) revert InferenceEscrow_NotDesignatedRelayer(requestId, signer);
        revert InferenceEscrow_NotActiveRelayer(signer);
    }

    /// @dev Ends a pending request as rejected or refunded and returns its price to the caller's credit.
    function _returnToCaller(uint256 requestId, uint8 newStatus) private {
        Request storage request = _requests[requestId];
        uint8 status = request.status;
        if (status == 0) revert InferenceEscrow_UnknownRequest(requestId);
        if (status != STATUS_PENDING) revert InferenceEscrow_NotPending(requestId, status);

        _addFreeCredit(_callerOf(requestId), _end(request, newStatus));
    }
}
