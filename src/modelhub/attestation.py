"""EIP-712 usage attestations: what a relayer signs to release a call's payment.

Built with eth_account's typed-data encoder, so the digest is the one any wallet or outside
tool computes for the escrow's domain ("ModelHub", version "1", chain id, escrow address).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils import keccak, to_checksum_address

DOMAIN_NAME = "ModelHub"
DOMAIN_VERSION = "1"

ATTESTATION_TYPES = {
    "Attestation": [
        {"name": "requestId", "type": "uint256"},
        {"name": "modelId", "type": "uint256"},
        {"name": "version", "type": "uint32"},
        {"name": "inputHash", "type": "bytes32"},
        {"name": "outputHash", "type": "bytes32"},
    ]
}


@dataclass(frozen=True)
class Attestation:
    """The signed statement: request `request_id` ran `model_id`@`version` on the input hashing
    to `input_hash` and delivered the output hashing to `output_hash`."""

    request_id: int
    model_id: int
    version: int
    input_hash: bytes
    output_hash: bytes

    def as_tuple(self) -> tuple[int, int, int, bytes, bytes]:
        """The struct as the contract's ABI takes it."""
        return (self.request_id, self.model_id, self.version, self.input_hash, self.output_hash)

    def as_message(self) -> dict[str, Any]:
        """The struct as EIP-712 message data (field names of the Solidity struct)."""
        return {
            "requestId": self.request_id,
            "modelId": self.model_id,
            "version": self.version,
            "inputHash": self.input_hash,
            "outputHash": self.output_hash,
        }

    def as_json(self) -> dict[str, Any]:
        """The struct for JSON: hashes as 0x-hex, the request id as a decimal string (request ids
        are 256-bit numbers, which JavaScript's JSON numbers cannot hold exactly)."""
        data = asdict(self)
        return {
            "requestId": str(data["request_id"]),
            "modelId": data["model_id"],
            "version": data["version"],
            "inputHash": "0x" + self.input_hash.hex(),
            "outputHash": "0x" + self.output_hash.hex(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Attestation":
        return cls(
            request_id=int(data["requestId"]),
            model_id=int(data["modelId"]),
            version=int(data["version"]),
            input_hash=bytes.fromhex(str(data["inputHash"]).removeprefix("0x")),
            output_hash=bytes.fromhex(str(data["outputHash"]).removeprefix("0x")),
        )


_ZERO = Attestation(0, 0, 0, b"\0" * 32, b"\0" * 32)


def domain(chain_id: int, escrow: str) -> dict[str, Any]:
    """The escrow's EIP-712 domain on chain `chain_id`."""
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(escrow),
    }


ATTESTATION_TYPEHASH = keccak(
    text="Attestation(uint256 requestId,uint256 modelId,uint32 version,bytes32 inputHash,bytes32 outputHash)"
)


@lru_cache(maxsize=16)
def _domain_separator(chain_id: int, escrow: str) -> bytes:
    # eth_account's own encoder computes the domain once; only the struct hash is per call.
    return bytes(encode_typed_data(domain(chain_id, escrow), ATTESTATION_TYPES, _ZERO.as_message()).header)


def signable_message(att: Attestation, chain_id: int, escrow: str) -> SignableMessage:
    """The EIP-712 message of `att`, as any account signs it. Built from the cached domain
    separator and the struct hash, which is ~5x faster than the generic typed-data encoder
    on the relayer's hot path; tests check it equals eth_account's encoding."""
    struct_hash = keccak(
        ATTESTATION_TYPEHASH
        + abi_encode(
            ["uint256", "uint256", "uint32", "bytes32", "bytes32"],
            [att.request_id, att.model_id, att.version, att.input_hash, att.output_hash],
        )
    )
    return SignableMessage(b"\x01", _domain_separator(chain_id, to_checksum_address(escrow)), struct_hash)


def sign_attestation(private_key: Any, att: Attestation, chain_id: int, escrow: str) -> bytes:
    """The 65-byte signature (r, s, v) of `att` by `private_key` for the escrow's domain."""
    return bytes(Account.sign_message(signable_message(att, chain_id, escrow), private_key).signature)


def recover_signer(att: Attestation, signature: bytes, chain_id: int, escrow: str) -> str:
    """The checksummed address that signed `att`; raises ValueError for a malformed signature."""
    return Account.recover_message(signable_message(att, chain_id, escrow), signature=signature)

