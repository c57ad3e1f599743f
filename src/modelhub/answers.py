"""Checks a relayer's signed answer before anyone trusts it: the output's canonical hash, the
attestation's fields and who signed it, for calls paid on chain and fast calls alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import errors as e
from .codec import encode_output
from .typed_data import Attestation, Domain, keccak, recover_digest_signer

# Makes the exception to raise from why an answer fails, with the caller's context around it.
Refuse = Callable[[str], Exception]


@dataclass(frozen=True)
class SignedAnswer:
    """A relayer's answer to a call (GET /v1/requests/{id}, or a fast call's 200), parsed:
    the output, its canonical bytes and their keccak-256, the output hash the relayer claims,
    its attestation and its signature. Nothing is checked yet but the form: see `check`."""

    output: dict
    output_bytes: bytes
    output_hash: bytes
    claimed_hash: bytes
    attestation: Attestation
    signature: bytes

    @classmethod
    def parse(cls, answer: Mapping[str, Any], refuse: Refuse) -> "SignedAnswer":
        """The answer's parts; raises `refuse(why)` when it is malformed."""
        output = answer.get("output")
        if not isinstance(output, dict):
            raise refuse("its `output` is not a JSON object")
        try:
            canonical = encode_output(output)
            att = Attestation.from_json(answer["attestation"])
            signature = bytes.fromhex(str(answer["signature"]).removeprefix("0x"))
            claimed_hash = bytes.fromhex(str(answer["outputHash"]).removeprefix("0x"))
        except (e.ModelHubError, KeyError, TypeError, ValueError) as error:
            raise refuse(f"the answer is malformed ({error})") from None
        return cls(output, canonical, keccak(canonical), claimed_hash, att, signature)

    def check(self, expected: Attestation, relayer: str, domain: Domain, refuse: Refuse, *,
              paid_by: str, settled_hash: bytes | None = None) -> None:
        """Raises `refuse(why)` unless the output hashes to the hash the relayer claims (and to
        `settled_hash`, the one settled on chain, if given), the attestation is `expected` (the
        one for what paid for the call, `paid_by` in words) and `relayer` signed it, with a
        signature the escrow would accept."""
        if self.output_hash != self.claimed_hash or settled_hash not in (None, self.output_hash):
            settled = "" if settled_hash is None else f" and the chain settled 0x{settled_hash.hex()}"
            raise refuse(f"the output hashes to 0x{self.output_hash.hex()}, but the relayer claims "
                         f"0x{self.claimed_hash.hex()}{settled}")
        if self.attestation != expected:
            raise refuse(f"the attestation {self.attestation.as_json()} is not {expected.as_json()}, "
                         f"the one for {paid_by}")
        signer = recover_digest_signer(domain.digest(self.attestation), self.signature)
        if signer != relayer:
            raise refuse(f"the attestation is signed by {signer or 'an invalid signature'}, not by "
                         f"the relayer {relayer}")
