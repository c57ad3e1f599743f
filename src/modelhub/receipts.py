"""EIP-712 receipts: what a caller signs to pay a relayer for off-chain calls, and fast signing
and recovery of receipts and attestations for the relayer's HTTP hot path.

A receipt's `calls` and `amount` are totals over the channel (caller, relayer, model); the
escrow's `settleReceipts` pays the increase since the channel's last settled receipt.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import coincurve
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils import keccak, to_canonical_address, to_checksum_address

from .attestation import Attestation, domain, signable_message as attestation_message

RECEIPT_TYPES = {
    "Receipt": [
        {"name": "caller", "type": "address"},
        {"name": "relayer", "type": "address"},
        {"name": "modelId", "type": "uint256"},
        {"name": "calls", "type": "uint256"},
        {"name": "amount", "type": "uint256"},
        {"name": "deadline", "type": "uint64"},
    ]
}
RECEIPT_TYPEHASH = keccak(
    text="Receipt(address caller,address relayer,uint256 modelId,uint256 calls,uint256 amount,uint64 deadline)"
)

# secp256k1's group order: OpenZeppelin's ECDSA refuses signatures with s above half of it
# (malleable twins), so the relayer must refuse them too or it would accept unsettleable receipts.
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = _SECP256K1_N // 2


@dataclass(frozen=True)
class Receipt:
    """A caller's promise to pay: over the channel (caller, relayer, model) it has made `calls`
    calls and owes `amount` in total; settleable until `deadline` (unix seconds)."""

    caller: str
    relayer: str
    model_id: int
    calls: int
    amount: int
    deadline: int

    def as_tuple(self) -> tuple[str, str, int, int, int, int]:
        """The struct as the contract's ABI takes it."""
        return (self.caller, self.relayer, self.model_id, self.calls, self.amount, self.deadline)

    def as_message(self) -> dict[str, Any]:
        """The struct as EIP-712 message data (field names of the Solidity struct)."""
        return {
            "caller": self.caller,
            "relayer": self.relayer,
            "modelId": self.model_id,
            "calls": self.calls,
            "amount": self.amount,
            "deadline": self.deadline,
        }

    def as_json(self) -> dict[str, Any]:
        """The struct for JSON. `calls` and `amount` are decimal strings: token amounts
        overflow the integers JavaScript's JSON numbers hold exactly."""
        return {
            "caller": self.caller,
            "relayer": self.relayer,
            "modelId": self.model_id,
            "calls": str(self.calls),
            "amount": str(self.amount),
            "deadline": self.deadline,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Receipt":
        """Parses `as_json` output; raises ValueError (or KeyError/TypeError) on malformed fields."""
        fields = (int(data["modelId"]), int(data["calls"]), int(data["amount"]), int(data["deadline"]))
        if any(value < 0 for value in fields) or fields[3] >= 2**64 or max(fields[:3]) >= 2**256:
            raise ValueError("receipt numbers must be unsigned: 256-bit, and the deadline 64-bit")
        return cls(
            caller=to_checksum_address(data["caller"]),
            relayer=to_checksum_address(data["relayer"]),
            model_id=fields[0],
            calls=fields[1],
            amount=fields[2],
            deadline=fields[3],
        )

    def next(self, price: int, deadline: int) -> "Receipt":
        """The receipt for one more call at `price`."""
        return Receipt(self.caller, self.relayer, self.model_id, self.calls + 1, self.amount + price, deadline)


def opening_receipt(caller: str, relayer: str, model_id: int) -> Receipt:
    """The state of a channel before its first receipt: nothing called, nothing owed."""
    return Receipt(to_checksum_address(caller), to_checksum_address(relayer), model_id, 0, 0, 0)


def struct_hash(receipt: Receipt) -> bytes:
    """keccak256 of the receipt's EIP-712 encoding: every field is one 32-byte word."""
    return keccak(
        RECEIPT_TYPEHASH
        + to_canonical_address(receipt.caller).rjust(32, b"\0")
        + to_canonical_address(receipt.relayer).rjust(32, b"\0")
        + receipt.model_id.to_bytes(32, "big")
        + receipt.calls.to_bytes(32, "big")
        + receipt.amount.to_bytes(32, "big")
        + receipt.deadline.to_bytes(32, "big")
    )


@lru_cache(maxsize=16)
def domain_separator(chain_id: int, escrow: str) -> bytes:
    """The escrow's EIP-712 domain separator, computed once by eth_account's own encoder."""
    zero = Receipt(escrow, escrow, 0, 0, 0, 0)
    return bytes(encode_typed_data(domain(chain_id, escrow), RECEIPT_TYPES, zero.as_message()).header)


def signable_message(receipt: Receipt, chain_id: int, escrow: str) -> SignableMessage:
    """The EIP-712 message of `receipt`, as any wallet signs it (tests check it equals
    eth_account's generic typed-data encoding)."""
    return SignableMessage(b"\x01", domain_separator(chain_id, to_checksum_address(escrow)), struct_hash(receipt))


def receipt_digest(receipt: Receipt, chain_id: int, escrow: str) -> bytes:
    """The 32-byte digest signed for `receipt`: what `InferenceEscrow.hashReceipt` returns."""
    return keccak(b"\x19\x01" + domain_separator(chain_id, to_checksum_address(escrow)) + struct_hash(receipt))


def attestation_digest(att: Attestation, chain_id: int, escrow: str) -> bytes:
    """The 32-byte digest signed for `att`: what `InferenceEscrow.hashAttestation` returns."""
    message = attestation_message(att, chain_id, escrow)
    return keccak(b"\x19" + message.version + message.header + message.body)


def receipt_call_id(receipt: Receipt, chain_id: int, escrow: str) -> int:
    """The request id an attestation of an off-chain call carries: the receipt's digest as a
    number, so the relayer's signed attestation names the exact receipt that paid for the call.
    No on-chain request has such an id, so the attestation cannot settle anything on chain."""
    return int.from_bytes(receipt_digest(receipt, chain_id, escrow), "big")


class FastSigner:
    """Signs 32-byte EIP-712 digests with a raw secp256k1 key through libsecp256k1 (coincurve),
    about 10x faster than eth_account's generic path; the relayer signs one per call."""

    def __init__(self, private_key: bytes | str) -> None:
        key = bytes.fromhex(private_key.removeprefix("0x")) if isinstance(private_key, str) else bytes(private_key)
        self._key = coincurve.PrivateKey(key)
        self.address = to_checksum_address(keccak(self._key.public_key.format(compressed=False)[1:])[-20:])

    def sign_digest(self, digest: bytes) -> bytes:
        """The 65-byte (r, s, v) signature of `digest`, v being 27 or 28 and s in the low half."""
        signature = self._key.sign_recoverable(digest, hasher=None)
        return signature[:64] + bytes([signature[64] + 27])

    def sign_receipt(self, receipt: Receipt, chain_id: int, escrow: str) -> bytes:
        return self.sign_digest(receipt_digest(receipt, chain_id, escrow))

    def sign_attestation(self, att: Attestation, chain_id: int, escrow: str) -> bytes:
        return self.sign_digest(attestation_digest(att, chain_id, escrow))


def recover_digest_signer(digest: bytes, signature: bytes) -> str | None:
    """The checksummed address whose key signed `digest`, or None when the signature is not
    one OpenZeppelin's ECDSA would accept (wrong length, v not 27/28, s in the high half)."""
    address = recover_digest_address(digest, signature)
    return None if address is None else to_checksum_address(address)


def recover_digest_address(digest: bytes, signature: bytes) -> bytes | None:
    """`recover_digest_signer` as the 20 raw address bytes: for the relayer's hot path, where
    the EIP-55 checksum (a keccak over the hex text) would only be compared and dropped."""
    if len(signature) != 65 or signature[64] not in (27, 28):
        return None
    s = int.from_bytes(signature[32:64], "big")
    if s == 0 or s > _HALF_N:
        return None
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([signature[64] - 27]), digest, hasher=None
        )
    except Exception:  # coincurve raises plain Exception for points off the curve
        return None
    return keccak(public_key.format(compressed=False)[1:])[-20:]


def recover_receipt_signer(receipt: Receipt, signature: bytes, chain_id: int, escrow: str) -> str | None:
    """The address that signed `receipt` (an EOA), or None for a signature the escrow refuses."""
    return recover_digest_signer(receipt_digest(receipt, chain_id, escrow), signature)


def sign_receipt(private_key: Any, receipt: Receipt, chain_id: int, escrow: str) -> bytes:
    """The 65-byte signature of `receipt` by `private_key`, through eth_account."""
    return bytes(Account.sign_message(signable_message(receipt, chain_id, escrow), private_key).signature)
