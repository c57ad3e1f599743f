"""The project's exception hierarchy: every error a user can meet, with a message that says
what went wrong and what to do about it."""

from enum import IntEnum
from typing import ClassVar


class RejectReason(IntEnum):
    """Reasons a relayer gives `InferenceEscrow.reject` (fixed by the public interface)."""

    INPUT_MISMATCH = 1  # the input does not fit the model
    MODEL_ERROR = 2  # the model fails to load or to run
    MODEL_FILE = 3  # the model file is unavailable or does not match its digest
    OTHER = 4


class ModelHubError(Exception):
    """Base class of every error Model Hub raises on purpose."""

    # The reject reason a relayer reports when this error stops a call; None = not a call's fault.
    reject_reason: ClassVar[int | None] = None


def reject_reason_of(error: BaseException) -> int:
    """The on-chain reject reason for an error met while serving a call (4, other, if unknown)."""
    reason = getattr(error, "reject_reason", None)
    return int(reason) if reason is not None else int(RejectReason.OTHER)


# --- inputs and outputs (codec, runtime) ---------------------------------------------------


class InvalidInputError(ModelHubError):
    """A call's input bytes are not valid JSON tensors, or do not fit the model's inputs."""

    reject_reason = RejectReason.INPUT_MISMATCH


class InputCheckUnavailableError(ModelHubError):
    """A call's input could not be checked against its model before paying: the model file is
    at no source the SDK could reach (its cache, the relayers), or none sent the right bytes."""


class ModelFailureError(ModelHubError):
    """Base of the errors of a model that cannot serve a call: it fails to load, to run, or to
    give an output with a canonical form (a relayer rejects the call as a model error)."""

    reject_reason = RejectReason.MODEL_ERROR


class OutputEncodingError(ModelFailureError):
    """A model produced an output that has no canonical JSON form (NaN, Inf, odd types)."""


# --- model files (store) -------------------------------------------------------------------


class InvalidContentIdError(ModelHubError):
    """A string or digest is not a Model Hub content id (CIDv1, raw codec, sha2-256)."""


class InvalidModelCardError(ModelHubError, ValueError):
    """A model card's bytes do not declare a tolerance jurors can read (too large, not a JSON
    object, a malformed tolerance); `kind` names which, `reason` says what is wrong."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind, self.reason = kind, reason


class ModelFileUnavailableError(ModelHubError):
    """Base of the errors of a model file a relayer cannot have: missing, damaged or too large
    (a relayer rejects the call for its model file)."""

    reject_reason = RejectReason.MODEL_FILE


class ArtifactNotFoundError(ModelFileUnavailableError):
    """No file with this content id is in the store (or loaded in the runtime)."""


class DigestMismatchError(ModelFileUnavailableError):
    """A file's bytes do not hash to the digest they are filed under: never use them."""


class ArtifactTooLargeError(ModelFileUnavailableError):
    """A file is larger than the store accepts."""


# --- running models (runtime) --------------------------------------------------------------


class ModelFileError(ModelFailureError):
    """A file matches its digest but is not an ONNX model this relayer can load and serve."""


class ModelExecutionError(ModelFailureError):
    """A loaded model failed while running on an input that fits its declared inputs."""


class InferenceTimeoutError(ModelExecutionError):
    """A model ran longer than the relayer's time limit and was stopped."""


# --- the chain and the contracts (contracts, hub) ------------------------------------------
# Raised by the SDK before sending a transaction when it can tell, and mapped from the
# contracts' custom errors (contracts.translate_revert) when the chain is the one to tell.


class ProjectNotCompiledError(ModelHubError):
    """The contract types are missing: the Ape project has not been compiled."""


class ChainUnreachableError(ModelHubError):
    """No connection to a chain, or the node stopped answering."""


class ChainMismatchError(ModelHubError):
    """The deployment describes another chain, or no contract sits at its addresses."""


class NotADevChainError(ModelHubError):
    """A dev-chain-only action (the token faucet) was asked for on a real network."""


class ContractRevertError(ModelHubError):
    """A contract refused a call for a reason the SDK has no more specific class for.

    `error_name` is the custom error (`Contract_Reason`), `inputs` its decoded arguments."""

    def __init__(self, message: str, error_name: str = "", inputs: dict | None = None) -> None:
        super().__init__(message)
        self.error_name = error_name
        self.inputs = dict(inputs or {})


class UnknownModelError(ContractRevertError):
    """No model has this id."""


class UnknownVersionError(ContractRevertError):
    """The model has no such version."""


class NotModelOwnerError(ContractRevertError):
    """Only a model's owner may change it."""


class InvalidPayeesError(ContractRevertError):
    """Payees and shares break the rules: 1 to 8, non-zero, summing to 10_000, no duplicates."""


class ModelInactiveError(ContractRevertError):
    """The model's owner switched it off: it takes no new calls."""


class PriceAboveMaxError(ContractRevertError):
    """The model's price is above the most the caller agreed to pay."""


class InsufficientCreditError(ContractRevertError):
    """The caller's prepaid credit in the escrow is below what the action needs."""


class InsufficientTokenBalanceError(ContractRevertError):
    """The account holds fewer fee tokens than it tries to deposit or bond."""


class AmountTooLargeError(ContractRevertError):
    """An amount is above the most the contracts can hold or take for it."""


class RequestNotFoundError(ContractRevertError):
    """No request has this id."""


class RequestNotPendingError(ContractRevertError):
    """The request has already ended (fulfilled, rejected or refunded)."""


class RefundTooEarlyError(ContractRevertError):
    """A request can be refunded only after its deadline."""


class RequestExpiredError(ContractRevertError):
    """The request's deadline passed: it can no longer be fulfilled, only refunded."""


class AttestationRefusedError(ContractRevertError):
    """An attestation does not match its request or is not validly signed."""


class NotActiveRelayerError(ContractRevertError):
    """The account is not a bonded, active relayer."""


class RelayerRegistrationError(ContractRevertError):
    """Registering or bonding as a relayer was refused (already registered, bond too low...)."""


class NothingToWithdrawError(ContractRevertError):
    """The account has no earnings waiting to be withdrawn."""


class WithdrawalDelayError(ContractRevertError):
    """Reserved credit was asked back before its release delay had passed (base class of the
    reservation errors below)."""


class NothingToReleaseError(WithdrawalDelayError):
    """No release of the reservation for this relayer was announced: announce one first."""


class ReleaseNotReadyError(WithdrawalDelayError):
    """The announced release of a reservation is not possible yet: its delay has not passed."""


class InsufficientReservationError(InsufficientCreditError):
    """The caller's reservation for a relayer (minus an announced release and what the relayer
    holds unsettled) cannot pay for another fast call: reserve more, or let it settle."""


class NotDesignatedRelayerError(ContractRevertError):
    """Only the relayer a request was designated to may serve or reject it; open requests
    cannot be rejected at all."""


class ReceiptSignerError(ModelHubError):
    """The key a session would sign receipts with is not the caller's receipt signer in force
    (a contract wallet must register one; a change applies only after the withdrawal delay)."""


class NotAContractWalletError(ModelHubError):
    """The address given as a wallet holds no contract, or not one the SDK can drive."""


class HubPausedError(ContractRevertError):
    """The operator paused new requests and registrations."""


class ArtifactUploadError(ModelHubError):
    """A relayer did not store a model file, or answered with another digest than the file's."""


class RequestWaitTimeoutError(ModelHubError):
    """A request was still pending when the caller stopped waiting for it."""


REJECT_MEANINGS = {
    RejectReason.INPUT_MISMATCH: "the input does not fit the model",
    RejectReason.MODEL_ERROR: "the model failed to run",
    RejectReason.MODEL_FILE: "the model file is unavailable or does not match its digest",
    RejectReason.OTHER: "another reason",
}


class CallRejectedError(ModelHubError):
    """A relayer declared a paid call unservable; its price is already back in the caller's credit."""

    def __init__(self, request_id: int, relayer: str, reason: int, price: int):
        self.request_id, self.relayer, self.reason, self.price = request_id, relayer, int(reason), price
        self.meaning = REJECT_MEANINGS.get(self.reason, "an unknown reason")
        super().__init__(
            f"request {request_id} was rejected by relayer {relayer} with reason {self.reason}: "
            f"{self.meaning}; its price ({price} base units) is back in your credit"
        )


class CallRefundedError(ModelHubError):
    """A paid call was refunded (past its deadline) before any relayer served it."""

    def __init__(self, request_id: int, price: int):
        self.request_id, self.price = request_id, price
        super().__init__(
            f"request {request_id} was refunded before a relayer served it; its price ({price} base units) "
            "is back in your credit"
        )



# --- fast calls: receipts paid over HTTP (session) -------------------------------------------


class FastCallError(ModelHubError):
    """A relayer refused a fast call; it was not charged (the relayer keeps no refused receipt).

    `status` is the HTTP status, `code` the relayer's error code (modelhub.refusals lists them),
    `details` its extra fields. The relayer raises it too (refusals.refuse), to answer with."""

    def __init__(self, message: str, status: int = 0, code: str = "", details: dict | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.code = message, status, code
        self.details = dict(details or {})


class RelayerUnreachableError(FastCallError):
    """No relayer answers at the URL, or it answered with something that is not its API."""


class RelayerMismatchError(ModelHubError):
    """The relayer at a URL is not the one expected, serves another chain, or is not active."""


class NoReservationError(FastCallError):
    """The relayer knows no reservation of the caller for it (`reserve`), so it refuses receipts."""


# Old name: relayers refused receipts of accounts that had not enabled them; now they refuse
# callers without a reservation for them.
ReceiptsNotEnabledError = NoReservationError


class OutputVerificationError(ModelHubError):
    """A relayer's answer does not match what was paid for (on chain, or by a receipt): its
    output, its attestation or the attestation's signer. Do not trust it."""


class ChannelStateError(ModelHubError):
    """A relayer's view of a channel cannot be true: below what the chain settled, or above what
    this caller signed. Signing on top of it could pay for calls never made."""


# --- disputes (DisputeCourt) ---------------------------------------------------------------


class NoDisputeCourtError(ModelHubError):
    """The deployment has no DisputeCourt (made before disputes existed): nothing can be challenged."""


class ChallengeRefusedError(ContractRevertError):
    """The court refuses a challenge: unknown, unsettled, expired or already disputed call,
    facts that do not match its record, a forged receipt or attestation, wrong input bytes."""


class DisputeStateError(ContractRevertError):
    """The dispute is not in the phase this needs, or its deadline has not come or has passed."""


class NotJurorError(ContractRevertError):
    """The account was not drawn to the dispute's jury."""


class VoteRefusedError(ContractRevertError):
    """A juror's commit or reveal is refused: twice, no commitment, or a reveal not matching it."""
