"""What a caller keeps of each fast call to challenge it later (the receipt and attestation with
their signatures, the exact input and output bytes): one JSON file per call, checked before use.

A fast call leaves nothing on chain but its receipt's settlement, so the caller is the only one
who can show the court what the relayer attested; `KeptCalls` is where it keeps that.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import platformdirs
from eth_utils import keccak, to_checksum_address

from . import errors as e
from .typed_data import Attestation, Domain, Receipt, recover_digest_signer

__all__ = ["KEPT_FORMAT", "KeptCall", "KeptCallError", "KeptCalls", "default_kept_folder"]

KEPT_FORMAT = "modelhub-kept-call/1"


class KeptCallError(e.ModelHubError):
    """A kept call that cannot be read, or that the court would refuse (changed since it was kept)."""


@dataclass(frozen=True)
class KeptCall:
    """One fast call as its caller keeps it: everything `DisputeCourt.challengeReceipt` takes,
    the deployment it belongs to, and what became of it (a spot check's finding, a dispute)."""

    chain_id: int
    escrow: str
    receipt: Receipt
    receipt_signature: bytes
    attestation: Attestation
    attestation_signature: bytes
    input: bytes  # the input's canonical JSON, exactly as sent
    output: bytes  # the output's canonical JSON, exactly as attested
    relayer_url: str = ""
    kept_at: int = 0  # unix time
    wrong: str = ""  # a spot check found the output wrong, and why: challenge once settled
    dispute_id: int = 0  # the dispute opened on it (0: none)
    refused: str = ""  # why the court refused to open one: no more tries

    @classmethod
    def of(cls, result: Any, chain_id: int, escrow: str, wrong: str = "") -> "KeptCall":
        """The kept form of a FastCallResult."""
        return cls(int(chain_id), to_checksum_address(escrow), result.receipt, bytes(result.receipt_signature),
                   result.attestation, bytes(result.signature), bytes(result.input_bytes),
                   bytes(result.output_bytes), result.relayer_url, int(time.time()), wrong)

    @property
    def call_id(self) -> int:
        """The attestation's request id: the receipt's EIP-712 digest as a number."""
        return self.attestation.request_id

    @property
    def call_hex(self) -> str:
        """The call id as 64 hex digits with 0x, how files and the CLI name it."""
        return f"0x{self.call_id:064x}"

    @property
    def channel(self) -> tuple[str, str, int]:
        """(caller, relayer, model) of the channel whose receipt paid for the call."""
        return self.receipt.caller, self.receipt.relayer, self.receipt.model_id

    def challenge_args(self) -> tuple:
        """The arguments of `Hub.challenge_fast_call`."""
        return (self.receipt, self.receipt_signature, self.attestation, self.attestation_signature,
                self.input, self.output)

    def problem(self, receipt_signers: frozenset[str] | None = None) -> str | None:
        """What the court would refuse in this call, checked here as the court checks it (None:
        nothing): the attestation is of this receipt, the bytes hash to its hashes, the
        relayer signed it, and the receipt is signed by its caller (or one of
        `receipt_signers`, the caller's receipt signer in force, when given)."""
        domain = Domain(self.chain_id, self.escrow)
        att, receipt = self.attestation, self.receipt
        if att.request_id != domain.call_id(receipt) or att.model_id != receipt.model_id:
            return "its attestation is not of its receipt (the request id must be the receipt's digest)"
        if keccak(self.input) != att.input_hash:
            return "its input bytes do not hash to the attested input hash"
        if keccak(self.output) != att.output_hash:
            return "its output bytes do not hash to the attested output hash"
        if recover_digest_signer(domain.digest(att), self.attestation_signature) != receipt.relayer:
            return f"its attestation is not signed by the receipt's relayer {receipt.relayer}"
        signer = recover_digest_signer(domain.digest(receipt), self.receipt_signature)
        if signer is None or signer not in {receipt.caller, *(receipt_signers or ())}:
            return f"its receipt is not signed by its caller {receipt.caller} or its receipt signer"
        return None

    def to_json(self) -> dict[str, Any]:
        return {"format": KEPT_FORMAT, "chainId": self.chain_id, "escrow": self.escrow,
                "callId": self.call_hex, "relayerUrl": self.relayer_url, "keptAt": self.kept_at,
                "receipt": self.receipt.as_json(), "receiptSignature": "0x" + self.receipt_signature.hex(),
                "attestation": self.attestation.as_json(),
                "attestationSignature": "0x" + self.attestation_signature.hex(),
                # Canonical JSON is UTF-8 text: kept as a string, readable, and exact.
                "input": self.input.decode("utf-8"), "output": self.output.decode("utf-8"),
                "wrong": self.wrong, "disputeId": self.dispute_id, "refused": self.refused}

    @classmethod
    def from_json(cls, data: Any, where: str = "the kept call") -> "KeptCall":
        """Parses `to_json` output; KeptCallError saying what is malformed."""
        if not isinstance(data, Mapping) or data.get("format") != KEPT_FORMAT:
            raise KeptCallError(f"{where} is not a kept fast call (no \"format\": \"{KEPT_FORMAT}\")")
        try:
            return cls(int(data["chainId"]), to_checksum_address(data["escrow"]),
                       Receipt.from_json(data["receipt"]), _hex(data["receiptSignature"]),
                       Attestation.from_json(data["attestation"]), _hex(data["attestationSignature"]),
                       str(data["input"]).encode("utf-8"), str(data["output"]).encode("utf-8"),
                       str(data.get("relayerUrl", "")), int(data.get("keptAt", 0)), str(data.get("wrong", "")),
                       int(data.get("disputeId", 0)), str(data.get("refused", "")))
        except (KeyError, TypeError, ValueError) as error:
            raise KeptCallError(f"{where} is malformed ({type(error).__name__}: {error}); keep the file "
                                "as `modelhub infer --fast` wrote it") from None

    @classmethod
    def read(cls, path: Path) -> "KeptCall":
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise KeptCallError(f"cannot read the kept call {path}: {error.strerror or error}") from None
        try:
            data = json.loads(text)
        except ValueError as error:
            raise KeptCallError(f"{path} is not JSON ({error})") from None
        return cls.from_json(data, str(path))

    def write(self, path: Path) -> Path:
        """Writes the call to `path` whole or not at all (a crash leaves the old file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        os.replace(partial, path)
        return path

    def with_changes(self, **changes: Any) -> "KeptCall":
        return replace(self, **changes)


def _hex(value: Any) -> bytes:
    return bytes.fromhex(str(value).removeprefix("0x"))


def default_kept_folder() -> Path:
    """Where fast calls are kept: the user's data folder ($XDG_DATA_HOME, or
    ~/.local/share on Linux) /modelhub/kept-calls."""
    return platformdirs.user_data_path("modelhub") / "kept-calls"


class KeptCalls:
    """The kept calls of one deployment: `<folder>/<chainId>-<escrow>/<call id>.json`, and those
    still to be challenged (found wrong, no dispute yet) in its `waiting/`, so that finding
    them does not read every call ever kept."""

    def __init__(self, chain_id: int, escrow: str, folder: str | Path | None = None) -> None:
        self.chain_id = int(chain_id)
        self.escrow = to_checksum_address(escrow)
        root = Path(folder) if folder is not None else default_kept_folder()
        self.folder = root / f"{self.chain_id}-{self.escrow.lower()}"
        self.waiting_folder = self.folder / "waiting"

    @classmethod
    def of(cls, hub: Any, folder: str | Path | None = None) -> "KeptCalls":
        return cls(hub.deployment.chain_id, hub.deployment.inference_escrow, folder)

    def path(self, call_id: int) -> Path:
        """The file of call `call_id` (whether it exists or not)."""
        name = f"{call_id:064x}.json"
        waiting = self.waiting_folder / name
        return waiting if waiting.exists() else self.folder / name

    def save(self, kept: KeptCall) -> Path:
        if (kept.chain_id, kept.escrow) != (self.chain_id, self.escrow):
            raise KeptCallError(f"call {kept.call_hex} belongs to chain {kept.chain_id}, escrow {kept.escrow}, "
                                f"not to this deployment's (chain {self.chain_id}, escrow {self.escrow})")
        name = f"{kept.call_id:064x}.json"
        waits = bool(kept.wrong) and not kept.dispute_id and not kept.refused
        path, other = ((self.waiting_folder / name, self.folder / name) if waits
                       else (self.folder / name, self.waiting_folder / name))
        kept.write(path)
        other.unlink(missing_ok=True)
        return path

    def _files(self, pattern: str = "*.json", waiting_only: bool = False) -> list[Path]:
        folders = [self.waiting_folder] if waiting_only else [self.folder, self.waiting_folder]
        return sorted(path for folder in folders if folder.is_dir() for path in folder.glob(pattern))

    def _read_all(self, paths: list[Path]) -> list[KeptCall]:
        calls = []
        for path in paths:
            try:
                calls.append(KeptCall.read(path))
            except KeptCallError:
                continue  # not a kept call (a stray file): nothing to challenge
        return sorted(calls, key=lambda kept: (kept.kept_at, kept.receipt.calls))

    def __iter__(self) -> Iterator[KeptCall]:
        """Every kept call of the deployment, oldest first."""
        yield from self._read_all(self._files())

    def find(self, text: str) -> KeptCall:
        """The kept call a user names: a file's path, its call id (decimal or 0x-hex), or the
        first hex digits of the id when only one kept call starts with them."""
        text = text.strip()
        if Path(text).is_file():
            return KeptCall.read(Path(text))
        digits = text.lower().removeprefix("0x")
        if not text.lower().startswith("0x") and text.isdigit() and len(text) > 20:
            digits = f"{int(text):064x}"  # a decimal id, as --json prints it
        if not digits or any(c not in "0123456789abcdef" for c in digits) or len(digits) > 64:
            raise KeptCallError(f"{text!r} is neither a kept call's file nor a call id (0x + up to 64 hex digits)")
        matches = self._files(f"{digits}*.json")
        if len(matches) == 1:
            return KeptCall.read(matches[0])
        if not matches:
            raise KeptCallError(f"no fast call with id {text} is kept in {self.folder}; give the kept call's "
                                "file, or the id `modelhub infer --fast` printed")
        raise KeptCallError(f"{len(matches)} kept calls have ids starting with {text}; give more digits")

    def pending(self, caller: str | None = None) -> list[KeptCall]:
        """Calls a spot check found wrong that are still to be challenged (of `caller` if given)."""
        who = None if caller is None else to_checksum_address(caller)
        return [kept for kept in self._read_all(self._files(waiting_only=True))
                if kept.wrong and not kept.dispute_id and not kept.refused
                and (who is None or kept.receipt.caller == who)]
