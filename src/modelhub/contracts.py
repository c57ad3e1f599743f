"""The one module that knows the contracts' ABIs (the checkout's build, or those packaged with
modelhub): Ape instances of a deployment's contracts, event decoders for raw JSON-RPC readers (the
relayer's follower, the indexer), and the contracts' custom errors turned into SDK exceptions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from . import errors as e
from .deployments import Deployment

TOKEN, REGISTRY, RELAYERS, ESCROW = "HubToken", "ModelRegistry", "RelayerRegistry", "InferenceEscrow"
COURT = "DisputeCourt"
CONTRACT_NAMES = (TOKEN, REGISTRY, RELAYERS, ESCROW, COURT)
# Contracts the hub may meet around its own: the test smart account that forwards calls.
_OPTIONAL_CONTRACTS = ("TestWallet",)


class RequestStatus(IntEnum):
    """`InferenceEscrow.getRequest` status."""

    PENDING = 1
    FULFILLED = 2
    REJECTED = 3
    REFUNDED = 4

    @property
    def ended(self) -> bool:
        return self is not RequestStatus.PENDING


class DisputePhase(IntEnum):
    """`DisputeCourt.Phase`."""

    NONE = 0
    AWAITING_DRAW = 1
    VOTING = 2
    RESOLVED = 3


class DisputeOutcome(IntEnum):
    """`DisputeCourt.Outcome`: what the jury found."""

    NONE = 0  # not resolved yet
    OUTPUT_WRONG = 1  # a majority of the seats: not what the model gives; the accused was slashed
    OUTPUT_RIGHT = 2  # a majority of the seats: it is; the challenge failed
    NO_DECISION = 3  # no majority of the seats either way (too few jurors or votes)


class SkipReason(IntEnum):
    """`InferenceEscrow.SkipReason`: why `fulfillBatch` skipped an item."""

    NONE = 0
    NOT_PENDING = 1  # unknown, or already fulfilled, rejected or refunded
    DEADLINE_PASSED = 2
    MISMATCH = 3  # model, version or input hash differ from the request
    INVALID_SIGNATURE = 4
    NOT_ACTIVE_RELAYER = 5
    NOT_DESIGNATED = 6  # the request names another relayer (requestInferenceVia)


class ReceiptSkipReason(IntEnum):
    """`InferenceEscrow.ReceiptSkipReason`: why `settleReceipts` skipped an item."""

    NONE = 0
    NOT_NEWER = 1  # no more calls than already settled, a smaller amount, or out of range
    EXPIRED = 2
    INVALID_SIGNATURE = 3  # signed neither by the caller's key nor by its receipt signer in force
    NOT_ACTIVE_RELAYER = 4  # the submitting relayer is not (or no longer) bonded and active
    UNKNOWN_MODEL = 5
    UNDERPRICED = 6  # pays less than the lowest receipt price per call since the last settlement
    INSUFFICIENT_CREDIT = 7  # more than the caller's reservation for the relayer
    NOT_SUBMITTER = 8  # the receipt names another relayer than the one submitting it


@dataclass(frozen=True)
class HubContracts:
    """Ape contract instances of one deployment."""

    token: Any
    registry: Any
    relayers: Any
    escrow: Any
    court: Any = None  # None for a deployment made before disputes existed


def contract_type(name: str) -> Any:
    """The compiled ContractType of `name`: from the Ape project's build when run inside the Model
    Hub checkout (the build is the source there), else from the ABIs packaged with modelhub."""
    from ape import project  # Ape is slow to import: only when a chain is actually used

    # The manifest rather than `project.<Name>`: that accessor recompiles changed sources,
    # which a long-running relayer must never do behind its operator's back.
    types = project.manifest.contract_types or {}
    if name in types:
        return types[name]
    packaged = _packaged_type(name)
    if packaged is None:
        raise e.ProjectNotCompiledError(
            f"the contract type {name} is neither in the Ape build of {project.path} nor packaged "
            f"with modelhub ({PACKAGED_ABIS}/): run `make compile` in the Model Hub checkout, or "
            "install a modelhub wheel built by `make wheel`"
        )
    return packaged


# --- the ABIs packaged with modelhub ---------------------------------------------------------
# `make compile` writes each contract's ABI from the build into src/modelhub/abi/ (generated,
# never committed), and the wheel carries them as package data: the SDK and the CLI then work
# from any folder, with no checkout and no compiler.

PACKAGED_ABIS = "abi"
# The contracts whose ABIs ship: the hub's five and the test smart account (`Hub(wallet=...)`).
PACKAGED_CONTRACTS = (*CONTRACT_NAMES, *_OPTIONAL_CONTRACTS)


@cache
def _packaged_type(name: str) -> Any:
    from ethpm_types import ContractType

    source = resources.files(__package__).joinpath(PACKAGED_ABIS, f"{name}.json")
    if not source.is_file():
        return None
    return ContractType.model_validate_json(source.read_text())


def write_packaged_abis(folder: Path | None = None) -> list[Path]:
    """Writes the ABI of each of PACKAGED_CONTRACTS from the Ape project's build into `folder`
    (default: the package's abi/ folder); returns the files written. Run by `make compile`."""
    from ape import project

    folder = folder or Path(__file__).with_name(PACKAGED_ABIS)
    folder.mkdir(exist_ok=True)
    types = project.manifest.contract_types or {}
    missing = [name for name in PACKAGED_CONTRACTS if name not in types]
    if missing:
        raise e.ProjectNotCompiledError(f"{', '.join(missing)} not in the Ape build: run `ape compile` first")
    written = []
    for name in PACKAGED_CONTRACTS:
        path = folder / f"{name}.json"
        path.write_text(types[name].model_dump_json(by_alias=True, include={"name", "abi"}) + "\n")
        written.append(path)
    return written


def load_contracts(deployment: Deployment) -> HubContracts:
    """The deployment's contracts on the connected chain; checks that code sits at each address."""
    from ape import chain

    with chain_errors():
        if chain.chain_id != deployment.chain_id:
            raise e.ChainMismatchError(
                f"the deployment is for chain {deployment.chain_id} but the connected network is "
                f"chain {chain.chain_id}; connect to the deployment's network, or use chain "
                f"{chain.chain_id}'s deployment file ({chain.chain_id}.json, --deployment FILE)"
            )
        addresses = {TOKEN: deployment.token, REGISTRY: deployment.model_registry,
                     RELAYERS: deployment.relayer_registry, ESCROW: deployment.inference_escrow}
        if deployment.dispute_court is not None:
            addresses[COURT] = deployment.dispute_court
        instances = {name: _instance(name, address) for name, address in addresses.items()}
    return HubContracts(instances[TOKEN], instances[REGISTRY], instances[RELAYERS], instances[ESCROW],
                        instances.get(COURT))


def _instance(name: str, address: str) -> Any:
    from ape import chain

    if not chain.provider.get_code(address):
        # Typical after a dev chain started without its saved state: the file outlived the contracts.
        raise e.ChainMismatchError(
            f"no contract at {address} ({name}) on chain {chain.chain_id}: the deployment file "
            "is stale; redeploy (`make up`, or `ape run deploy --network <network>`)"
        )
    return chain.contracts.instance_at(address, contract_type=contract_type(name))


# --- event decoders for raw JSON-RPC readers -------------------------------------------------
# Built once per event from the compiled ABIs, so readers that skip Ape (the relayer's follower,
# the indexer) never spell an event's signature or topic.

_STATIC = ("uint", "int", "address", "bool", "bytes32")


class EventDecoder:
    """One event's decoder. Events whose fields are all one-word types (most of the hub's) are
    read word by word, several times faster than eth_abi; the others go through eth_abi.
    Values: addresses as lowercase hex, bytes and bytes32 as 0x-hex, ints, bools."""

    def __init__(self, abi: Any) -> None:
        self.name = abi.name
        self.topic = "0x" + keccak(text=abi.selector).hex()
        self.indexed = [(i.name, i.canonical_type) for i in abi.inputs if i.indexed]
        self.plain = [(i.name, i.canonical_type) for i in abi.inputs if not i.indexed]
        self.static = all(kind.startswith(_STATIC) and not kind.endswith("]") for _, kind in self.plain)

    def decode(self, topics: Any, data: bytes) -> dict[str, Any]:
        """The event's arguments by name, from its topics after topic 0 (bytes) and its data."""
        args: dict[str, Any] = {}
        for (name, kind), topic in zip(self.indexed, topics):
            args[name] = _word(kind, topic)
        if self.static:
            for index, (name, kind) in enumerate(self.plain):
                args[name] = _word(kind, data[32 * index:32 * index + 32])
            return args
        values = abi_decode([kind for _, kind in self.plain], data)
        for (name, kind), value in zip(self.plain, values):
            args[name] = _plain(kind, value)
        return args


def _word(kind: str, word: bytes) -> Any:
    """A one-word ABI value: addresses as lowercase hex, bytes32 as 0x-hex, ints, bools."""
    if kind == "address":
        return "0x" + word[12:].hex()
    if kind == "bool":
        return word[-1] == 1
    if kind == "bytes32":
        return "0x" + word.hex()
    if kind.startswith("int"):
        return int.from_bytes(word, "big", signed=True)
    return int.from_bytes(word, "big")


def _plain(kind: str, value: Any) -> Any:
    if kind == "address":
        return value.lower()
    if kind == "address[]":
        return [v.lower() for v in value]
    if kind.startswith("bytes"):
        return "0x" + bytes(value).hex()
    return value


@cache
def event_decoders(contract: str) -> dict[str, EventDecoder]:
    """Topic 0 (0x-hex) -> decoder, for every event of `contract`."""
    decoders = [EventDecoder(abi) for abi in contract_type(contract).events]
    return {decoder.topic: decoder for decoder in decoders}


@cache
def event(contract: str, name: str) -> EventDecoder:
    """The decoder of `contract`'s event `name`; its `.topic` is the event's topic 0."""
    for decoder in event_decoders(contract).values():
        if decoder.name == name:
            return decoder
    raise KeyError(f"{contract} has no event {name}")


def event_topic(contract: str, name: str) -> str:
    """Topic 0 of `contract`'s event `name`, as 0x-hex (what eth_getLogs filters on)."""
    return event(contract, name).topic


# --- errors ----------------------------------------------------------------------------------

# Custom error name -> (SDK exception, message). Messages are format strings over the error's
# arguments; an argument that could not be decoded reads as "?".
_MESSAGES: dict[str, tuple[type[e.ContractRevertError], str]] = {
    "ModelRegistry_UnknownModel": (e.UnknownModelError,
        "model {modelId} does not exist; pick an id from list_models() (ids start at 1)"),
    "ModelRegistry_UnknownVersion": (e.UnknownVersionError,
        "model {modelId} has no version {version}; get_model({modelId}) lists its versions"),
    "InferenceEscrow_UnknownVersion": (e.UnknownVersionError,
        "model {modelId} has no version {version} (its latest is {latestVersion}); "
        "ask for version 0 to call the latest"),
    "ModelRegistry_NotModelOwner": (e.NotModelOwnerError,
        "{account} does not own model {modelId}; only its owner may change it"),
    "ModelRegistry_EmptyName": (e.ContractRevertError, "a model needs a non-empty name"),
    "ModelRegistry_ZeroDigest": (e.ContractRevertError,
        "the artifact digest is zero; give the sha-256 of the model file"),
    "ModelRegistry_PriceTooHigh": (e.ContractRevertError,
        "the price {pricePerCall} is above the registry's cap of {maxPricePerCall}"),
    "ModelRegistry_ZeroAddress": (e.ContractRevertError,
        "the zero address cannot own a model or be a payee; give a real account"),
    "ModelRegistry_PayeeCount": (e.InvalidPayeesError,
        "{count} payees given; a model has 1 to {maxCount} payees"),
    "ModelRegistry_LengthMismatch": (e.InvalidPayeesError,
        "{accounts} payees but {shares} shares; give one share per payee"),
    "ModelRegistry_ZeroShare": (e.InvalidPayeesError,
        "payee {account} has a zero share; every payee needs a share above 0 bps"),
    "ModelRegistry_DuplicatePayee": (e.InvalidPayeesError,
        "payee {account} is listed twice; list each payee once"),
    "ModelRegistry_SharesTotal": (e.InvalidPayeesError,
        "the shares sum to {total} bps but must sum to {required}"),
    "InferenceEscrow_ZeroAmount": (e.ContractRevertError,
        "the amount is zero; give a positive amount in token base units"),
    "InferenceEscrow_InsufficientCredit": (e.InsufficientCreditError,
        "{account} has {credit} in credit but this needs {required}: deposit {shortfall} more "
        "first (Hub.deposit)"),
    "InferenceEscrow_NothingToWithdraw": (e.NothingToWithdrawError,
        "{account} has no earnings to withdraw; earnings arrive as calls settle"),
    "InferenceEscrow_ModelInactive": (e.ModelInactiveError,
        "model {modelId} is inactive and takes no new calls; its owner can switch it back on "
        "with set_active"),
    "InferenceEscrow_PriceAboveMax": (e.PriceAboveMaxError,
        "model {modelId} costs {price} per call, above your max_price of {maxPrice}; raise "
        "max_price if you accept the price"),
    "InferenceEscrow_UnknownRequest": (e.RequestNotFoundError,
        "no request has id {requestId}; use the id request() returned"),
    "InferenceEscrow_NotPending": (e.RequestNotPendingError,
        "request {requestId} has already ended ({status}); there is nothing left to do"),
    "InferenceEscrow_DeadlinePassed": (e.RequestExpiredError,
        "request {requestId} passed its deadline ({deadline}); it can only be refunded now"),
    "InferenceEscrow_DeadlineNotPassed": (e.RefundTooEarlyError,
        "request {requestId} can be refunded only after its deadline ({deadline}, unix "
        "time); wait for it"),
    "InferenceEscrow_AttestationMismatch": (e.AttestationRefusedError,
        "the attestation does not match request {requestId} (model, version or input hash)"),
    "InferenceEscrow_InvalidSignature": (e.AttestationRefusedError,
        "the signature on the attestation for request {requestId} is malformed"),
    "InferenceEscrow_NotActiveRelayer": (e.NotActiveRelayerError,
        "{account} is not an active relayer; register with a bond (relayer_register) first"),
    "InferenceEscrow_InvalidRejectReason": (e.ContractRevertError,
        "reject reason {reason} is not one of 1 bad input, 2 model error, 3 model file, 4 other"),
    "InferenceEscrow_LengthMismatch": (e.ContractRevertError,
        "{attestations} attestations but {signatures} signatures; give one signature each"),
    "RelayerRegistry_AlreadyRegistered": (e.RelayerRegistrationError,
        "{relayer} is already registered as a relayer"),
    "RelayerRegistry_NotRegistered": (e.RelayerRegistrationError,
        "{relayer} is not a registered relayer; register first"),
    "RelayerRegistry_BondTooLow": (e.RelayerRegistrationError,
        "a bond of {bond} is below the minimum of {minBond}; bond at least the minimum"),
    "RelayerRegistry_BondTooHigh": (e.RelayerRegistrationError,
        "a bond of {bond} is above the maximum of {maxBond}"),
    "RelayerRegistry_ZeroAmount": (e.ContractRevertError,
        "the amount is zero; give a positive amount in token base units"),
    "RelayerRegistry_Unbonding": (e.RelayerRegistrationError,
        "{relayer} is unbonding (its bond can be withdrawn from {unbondAt}, unix time) and "
        "serves no more"),
    "RelayerRegistry_NotUnbonding": (e.RelayerRegistrationError,
        "{relayer} has not begun to unbond; begin first, then withdraw the bond after the delay"),
    "RelayerRegistry_UnbondPending": (e.RelayerRegistrationError,
        "{relayer}'s bond can be withdrawn from {unbondAt} (unix time); wait until then"),
    "InferenceEscrow_NotDesignatedRelayer": (e.NotDesignatedRelayerError,
        "{account} is not the relayer request {requestId} was designated to: only that "
        "relayer may serve or reject it (calls open to every relayer cannot be rejected; "
        "they are refunded after their deadline)"),
    "InferenceEscrow_NothingToRelease": (e.NothingToReleaseError,
        "{caller} has announced no release of its reservation for relayer {relayer}; announce "
        "one first (Hub.announce_release) and release it once the withdrawal delay has passed"),
    "InferenceEscrow_ReleaseNotReady": (e.ReleaseNotReadyError,
        "{caller}'s announced release of its reservation for relayer {relayer} is possible from "
        "{readyAt} (unix time), when the relayer has had time to settle its receipts; wait "
        "until then"),
    "InferenceEscrow_CreditOverflow": (e.ContractRevertError,
        "{account} would hold more than {maxCredit} base units there; use a smaller amount"),
    "InferenceEscrow_FeeTooHigh": (e.ContractRevertError,
        "a fee of {bps} bps is above the maximum of {maxBps} bps"),
    "InferenceEscrow_ZeroAddress": (e.ContractRevertError,
        "the zero address was given; give a real account"),
    "RelayerRegistry_BondHeld": (e.RelayerRegistrationError,
        "{relayer}'s bond is held by {holds} open dispute(s) (as the accused or a juror); it can "
        "be withdrawn once they are resolved"),
    "RelayerRegistry_NotCourt": (e.ContractRevertError,
        "{account} is not the dispute court; only the court holds, releases and slashes bonds"),
    "DisputeCourt_UnknownRequest": (e.ChallengeRefusedError,
        "no request has id {requestId}; challenge a call by the id its request returned"),
    "DisputeCourt_NotSettled": (e.ChallengeRefusedError,
        "request {requestId} has not settled ({status}): only a settled call's attestation can be "
        "challenged"),
    "DisputeCourt_RecordMismatch": (e.ChallengeRefusedError,
        "the facts given for request {requestId} are not those it settled with (model, version, "
        "price, input or output hash, relayer or settlement time); read them from its events "
        "(Hub.settled_call)"),
    "DisputeCourt_InputMismatch": (e.ChallengeRefusedError,
        "the input bytes given hash to {inputGiven}, not to the call's input hash {inputHash}; "
        "give the exact bytes the call ran on"),
    "DisputeCourt_OutputMismatch": (e.ChallengeRefusedError,
        "the output bytes given hash to {outputGiven}, not to the attested output hash "
        "{outputHash}; give the exact bytes the relayer delivered"),
    "DisputeCourt_WindowClosed": (e.ChallengeRefusedError,
        "the dispute window of call {requestId} closed at {closedAt} (unix time); it can no "
        "longer be challenged"),
    "DisputeCourt_AlreadyDisputed": (e.ChallengeRefusedError,
        "this attestation ({attestation}) is already disputed in dispute {disputeId}; an "
        "attestation is disputed once, ever"),
    "DisputeCourt_ReceiptMismatch": (e.ChallengeRefusedError,
        "the attestation (request id {requestId}) is not of this receipt: its request id must be "
        "the receipt's digest and its model the receipt's"),
    "DisputeCourt_InvalidReceiptSignature": (e.ChallengeRefusedError,
        "the receipt of call {requestId} is not signed by its caller's key or receipt signer in force"),
    "DisputeCourt_InvalidAttestationSignature": (e.ChallengeRefusedError,
        "the attestation of call {requestId} is not signed by the receipt's relayer"),
    "DisputeCourt_ReceiptNotSettled": (e.ChallengeRefusedError,
        "the receipt of call {requestId} pays {calls} calls but its channel has settled "
        "{settledCalls}: a fast call can be challenged once its receipt is settled"),
    "DisputeCourt_UnknownDispute": (e.DisputeStateError, "no dispute has id {disputeId}"),
    "DisputeCourt_WrongPhase": (e.DisputeStateError,
        "dispute {disputeId} is in phase {phase} (1 awaiting its draw, 2 voting, 3 resolved), not "
        "the one this needs"),
    "DisputeCourt_DrawTooEarly": (e.DisputeStateError,
        "the jury of dispute {disputeId} can be drawn from block {drawBlock} on; wait for it"),
    "DisputeCourt_NotJuror": (e.NotJurorError,
        "{account} was not drawn to the jury of dispute {disputeId}"),
    "DisputeCourt_CommitClosed": (e.DisputeStateError,
        "the commit period of dispute {disputeId} ended at {commitDeadline} (unix time)"),
    "DisputeCourt_AlreadyCommitted": (e.VoteRefusedError,
        "{juror} has already committed its vote in dispute {disputeId}; a juror commits once"),
    "DisputeCourt_ZeroCommitment": (e.VoteRefusedError,
        "a zero commitment commits to nothing; commit to voteCommitment(dispute, juror, vote, salt)"),
    "DisputeCourt_RevealNotOpen": (e.DisputeStateError,
        "votes of dispute {disputeId} are revealed after its commit deadline ({commitDeadline}, "
        "unix time); wait for it"),
    "DisputeCourt_RevealClosed": (e.DisputeStateError,
        "the reveal period of dispute {disputeId} ended at {revealDeadline} (unix time)"),
    "DisputeCourt_NotCommitted": (e.VoteRefusedError,
        "{juror} committed no vote in dispute {disputeId}, so it has nothing to reveal"),
    "DisputeCourt_AlreadyRevealed": (e.VoteRefusedError,
        "{juror} has already revealed its vote in dispute {disputeId}"),
    "DisputeCourt_InvalidVote": (e.VoteRefusedError,
        "vote {vote} is neither 1 (the output is what the model gives) nor 2 (it is not)"),
    "DisputeCourt_CommitmentMismatch": (e.VoteRefusedError,
        "the vote and salt {juror} revealed in dispute {disputeId} are not those it committed to"),
    "DisputeCourt_TooEarlyToResolve": (e.DisputeStateError,
        "dispute {disputeId} can be resolved after its reveal deadline ({revealDeadline}, unix "
        "time), or once every juror has revealed"),
    "DisputeCourt_NothingToClaim": (e.NothingToWithdrawError,
        "{account} has nothing to claim from the dispute court"),
    "EnforcedPause": (e.HubPausedError,
        "Model Hub is paused by its operator: no new requests or registrations for now "
        "(withdrawals and refunds still work)"),
    "ERC20InsufficientBalance": (e.InsufficientTokenBalanceError,
        "{sender} holds {balance} fee tokens but needs {needed}; get fee tokens first"),
}

_ANVIL_CUSTOM_ERROR = re.compile(r"custom error 0x([0-9a-fA-F]{8}):? ?(.*)\Z", re.S)
_HEX_DIGITS = re.compile(r"(?:[0-9a-fA-F]{2})+")
_RAW_REVERT = re.compile(r"(?:0x)?([0-9a-fA-F]{8}(?:[0-9a-fA-F]{2})*)\Z")


class _Args(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def translate_revert(error: Exception) -> e.ModelHubError:
    """The SDK exception for a contract revert (an Ape ContractLogicError)."""
    name, inputs = decode_revert(error)
    if name is None:
        reason = getattr(error, "revert_message", None) or str(error) or "no reason given"
        return e.ContractRevertError(f"the contract refused the call: {reason}")
    return refusal(name, **inputs)


def refusal(error_name: str, **inputs: Any) -> e.ContractRevertError:
    """The SDK exception for the contracts' custom error `error_name` with these arguments;
    the SDK also raises it itself when it can tell before sending that a call would fail."""
    cls, template = _MESSAGES.get(error_name, (e.ContractRevertError, ""))
    args = _Args({key: _readable(key, value) for key, value in inputs.items()})
    if isinstance(inputs.get("credit"), int) and isinstance(inputs.get("required"), int):
        args["shortfall"] = inputs["required"] - inputs["credit"]
    if template:
        message = template.format_map(args)
    else:
        listed = ", ".join(f"{key}={value}" for key, value in args.items())
        message = f"the contract refused the call with {error_name}({listed})"
    return cls(message, error_name=error_name, inputs=inputs)


def decode_revert(error: Exception) -> tuple[str | None, dict[str, Any]]:
    """(custom error name, its arguments) of a revert, or (None, {}) when it has no custom error.

    Ape decodes reverts of transactions into CustomError subclasses, but leaves those of
    read-only calls as anvil's text "custom error 0x<selector>: <argument bytes>"; both work.
    """
    from ape.exceptions import CustomError

    if isinstance(error, CustomError):
        return _unwrapped(error.abi.name, dict(error.inputs or {}))
    message = str(getattr(error, "revert_message", None) or "")
    if match := _ANVIL_CUSTOM_ERROR.match(message):
        return _decode(bytes.fromhex(match.group(1)), match.group(2), from_text=True)
    if match := _RAW_REVERT.match(message):
        data = bytes.fromhex(match.group(1))
        return _decode(data[:4], data[4:], from_text=False)
    return None, {}


def _unwrapped(name: str | None, inputs: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """A contract wallet's "call failed" error (TestWallet_CallFailed(bytes reason)) stands for
    the revert of the call it made: that one says what went wrong."""
    if name in _WALLET_CALL_FAILED and isinstance(inputs.get("reason"), (bytes, bytearray)):
        data = bytes(inputs["reason"])
        if len(data) >= 4:
            inner = _decode(data[:4], data[4:], from_text=False)
            if inner[0] is not None:
                return inner
    return name, inputs


_WALLET_CALL_FAILED = ("TestWallet_CallFailed",)


def _decode(selector: bytes, payload: Any, from_text: bool) -> tuple[str | None, dict[str, Any]]:
    abi = _errors_by_selector().get(selector)
    if abi is None:
        return None, {}
    types = [arg.canonical_type for arg in abi.inputs]
    for data in _argument_bytes(payload) if from_text else [payload]:
        try:
            values = abi_decode(types, data)
        except Exception:  # not this reading of the text, or truncated data
            continue
        if abi_encode(types, values) == data:  # a reading that round-trips is the right one
            return _unwrapped(abi.name, {arg.name: to_checksum_address(v) if arg.type == "address" else v
                                         for arg, v in zip(abi.inputs, values)})
    return abi.name, {}  # the name alone still says what failed


def _argument_bytes(text: str) -> list[bytes]:
    """The argument bytes anvil may mean: it writes them as text when they are valid UTF-8,
    and as hex digits when they are not."""
    readings = [text.encode("utf-8")]
    if _HEX_DIGITS.fullmatch(text):
        readings.append(bytes.fromhex(text))
    return readings


@cache
def _errors_by_selector() -> dict[bytes, Any]:
    # Errors of all four contracts: a revert may bubble up from a contract called by another.
    table = {}
    for name in (*CONTRACT_NAMES, *_OPTIONAL_CONTRACTS):
        try:
            errors = contract_type(name).errors
        except e.ProjectNotCompiledError:
            if name in _OPTIONAL_CONTRACTS:
                continue
            raise
        for abi in errors:
            table[keccak(text=abi.selector)[:4]] = abi
    return table



def _readable(key: str, value: Any) -> Any:
    if key == "status" and value in RequestStatus._value2member_map_:
        return RequestStatus(value).name.lower()
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


@contextmanager
def chain_errors() -> Iterator[None]:
    """Turns contract reverts and lost connections inside the block into SDK exceptions."""
    from ape.exceptions import ContractLogicError, ProviderNotConnectedError
    from requests.exceptions import ConnectionError as HTTPConnectionError

    try:
        yield
    except ContractLogicError as error:
        raise translate_revert(error) from error
    except (ProviderNotConnectedError, HTTPConnectionError) as error:
        raise e.ChainUnreachableError(
            f"cannot reach the chain ({error}); check that the node is running and that the "
            "network given (--network) points at it"
        ) from error
