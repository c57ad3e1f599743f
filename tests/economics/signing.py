"""EIP-712 digests and fast signing of receipts and attestations, inlined so that the economic
tests drive the contracts without depending on the SDK (whose helpers change with it).

The digests are the escrow's `hashReceipt` / `hashAttestation` (domain "ModelHub", version "1");
the state machine checks them against the chain once per session.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import coincurve
from eth_utils import keccak, to_canonical_address, to_checksum_address

DOMAIN_TYPEHASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
RECEIPT_TYPEHASH = keccak(
    text="Receipt(address caller,address relayer,uint256 modelId,uint256 calls,uint256 amount,uint64 deadline)"
)
ATTESTATION_TYPEHASH = keccak(
    text="Attestation(uint256 requestId,uint256 modelId,uint32 version,bytes32 inputHash,bytes32 outputHash)"
)


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address(value: str) -> bytes:
    return to_canonical_address(value).rjust(32, b"\0")


@lru_cache(maxsize=16)
def domain_separator(chain_id: int, verifying: str) -> bytes:
    return keccak(
        DOMAIN_TYPEHASH + keccak(text="ModelHub") + keccak(text="1") + _word(chain_id) + _address(verifying)
    )


@dataclass(frozen=True)
class Receipt:
    caller: str
    relayer: str
    model_id: int
    calls: int
    amount: int
    deadline: int

    def as_tuple(self) -> tuple:
        return (self.caller, self.relayer, self.model_id, self.calls, self.amount, self.deadline)

    def digest(self, chain_id: int, escrow: str) -> bytes:
        body = keccak(
            RECEIPT_TYPEHASH + _address(self.caller) + _address(self.relayer) + _word(self.model_id)
            + _word(self.calls) + _word(self.amount) + _word(self.deadline)
        )  # fmt: skip
        return keccak(b"\x19\x01" + domain_separator(chain_id, escrow) + body)


@dataclass(frozen=True)
class Attestation:
    request_id: int
    model_id: int
    version: int
    input_hash: bytes
    output_hash: bytes

    def as_tuple(self) -> tuple:
        return (self.request_id, self.model_id, self.version, self.input_hash, self.output_hash)

    def digest(self, chain_id: int, escrow: str) -> bytes:
        body = keccak(
            ATTESTATION_TYPEHASH + _word(self.request_id) + _word(self.model_id) + _word(self.version)
            + self.input_hash + self.output_hash
        )  # fmt: skip
        return keccak(b"\x19\x01" + domain_separator(chain_id, escrow) + body)


class Signer:
    """A raw secp256k1 key (libsecp256k1 through coincurve): 65-byte (r, s, v) signatures with
    v 27/28 and s in the low half, as OpenZeppelin's ECDSA accepts."""

    def __init__(self, private_key: str | bytes) -> None:
        key = bytes.fromhex(private_key.removeprefix("0x")) if isinstance(private_key, str) else bytes(private_key)
        self._key = coincurve.PrivateKey(key)
        self.address = to_checksum_address(keccak(self._key.public_key.format(compressed=False)[1:])[-20:])

    def sign_digest(self, digest: bytes) -> bytes:
        signature = self._key.sign_recoverable(digest, hasher=None)
        return signature[:64] + bytes([signature[64] + 27])

    def sign_receipt(self, receipt: Receipt, chain_id: int, escrow: str) -> bytes:
        return self.sign_digest(receipt.digest(chain_id, escrow))

    def sign_attestation(self, att: Attestation, chain_id: int, escrow: str) -> bytes:
        return self.sign_digest(att.digest(chain_id, escrow))
