"""The protocol's EIP-712 typed data: the escrow's domain, the Receipt and Attestation structs,
their digests, signing (eth_account or libsecp256k1) and recovery, all from one definition; and
the disputes' hashed messages: a settled call's record and a juror's vote commitment.

Each struct's fields are written once, as the dataclass's fields with their Solidity types; the
type string, the typehash and eth_account's types dict are derived from them. Every field is one
32-byte word, so digests are built from raw words (two keccaks, microseconds); tests check they
equal eth_account's generic typed-data encoding, which any wallet or outside tool computes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache
from operator import attrgetter
from typing import Any, ClassVar

import coincurve
from eth_account import Account
from eth_account.messages import SignableMessage
from eth_utils import keccak as _eth_keccak
from eth_utils import to_checksum_address

__all__ = [
    "ATTESTATION", "ATTESTATION_TYPEHASH", "ATTESTATION_TYPES", "Attestation", "DOMAIN_NAME",
    "DOMAIN_VERSION", "Domain", "KeySigner", "MAX_AMOUNT", "MAX_CALLS", "MIN_RECEIPT_PRICE", "RECEIPT", "RECEIPT_TYPEHASH", "RECEIPT_TYPES",
    "Receipt", "SettledCall", "StructType", "VOTE_OUTPUT_MATCHES", "VOTE_OUTPUT_WRONG", "call_id", "digest",
    "domain", "domain_separator", "keccak", "vote_commitment",
    "opening_receipt", "recover_digest_address", "recover_digest_signer", "recover_signer",
    "recover_valid_signer", "sign", "signable_message", "struct_hash",
]

DOMAIN_NAME = "ModelHub"
DOMAIN_VERSION = "1"

# secp256k1's group order: OpenZeppelin's ECDSA refuses signatures with s above half of it
# (malleable twins), so whoever checks signatures for the escrow must refuse them too.
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = _SECP256K1_N // 2

try:  # safe-pysha3 (requirements.lock): ~3x faster than eth_hash's pycryptodome backend
    from sha3 import keccak_256 as _keccak_256

    def keccak(data: bytes) -> bytes:
        """keccak-256 of `data`."""
        return _keccak_256(data).digest()
except ImportError:  # pragma: no cover -- same digest, slower
    def keccak(data: bytes) -> bytes:
        """keccak-256 of `data`."""
        return _eth_keccak(data)


# --- struct types --------------------------------------------------------------------------


def _address_word(value: str | bytes) -> bytes:
    raw = bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)
    if len(raw) != 20:
        raise ValueError(f"{value!r} is not a 20-byte address")
    return raw.rjust(32, b"\0")


def _bytes32_word(value: bytes) -> bytes:
    if len(value) != 32:
        raise ValueError(f"a bytes32 field holds 32 bytes, not {len(value)}")
    return bytes(value)


def _uint_word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _string_word(value: str) -> bytes:
    return keccak(value.encode("utf-8"))


# How each Solidity type the protocol's structs use becomes its one 32-byte word (EIP-712 encodeData).
_WORD_ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "address": _address_word, "bytes32": _bytes32_word, "string": _string_word,
    **{f"uint{bits}": _uint_word for bits in range(8, 257, 8)},
}


class StructType:
    """An EIP-712 struct type: its name and (field name, Solidity type) pairs, in order. The
    type string, typehash and eth_account's types dict all come from those pairs."""

    def __init__(self, name: str, members: Sequence[tuple[str, str]]) -> None:
        self.name = name
        self.members = tuple(members)
        self.encode_type = f"{name}({','.join(f'{kind} {member}' for member, kind in self.members)})"
        self.typehash = keccak(self.encode_type.encode())
        self.types = {name: [{"name": member, "type": kind} for member, kind in self.members]}
        self._encoders = tuple(_WORD_ENCODERS[kind] for _, kind in self.members)

    def hash(self, values: Sequence[Any]) -> bytes:
        """hashStruct of the struct whose fields hold `values` (in field order)."""
        return keccak(self.typehash + b"".join([encode(value) for encode, value in zip(self._encoders, values)]))

    def __repr__(self) -> str:
        return f"StructType({self.encode_type!r})"


def _solidity(type_name: str, decimal_string: bool = False) -> Any:
    """A dataclass field that is a struct member of Solidity type `type_name`. With
    `decimal_string`, its JSON form is a decimal string: the numbers it holds overflow the
    integers JavaScript's JSON numbers hold exactly (request ids, token amounts)."""
    return field(metadata={"solidity": type_name, "decimal_string": decimal_string})


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _typed_struct(cls: type) -> type:
    """Derives the struct's type and forms from the dataclass's fields (members are named in
    camelCase, as in Solidity)."""
    cls._json = tuple((_camel(f.name), f.metadata["solidity"], f.metadata["decimal_string"]) for f in fields(cls))
    cls.struct_type = StructType(cls.__name__, [(member, kind) for member, kind, _ in cls._json])
    cls._values = attrgetter(*(f.name for f in fields(cls)))
    return cls


def _to_json(kind: str, decimal_string: bool, value: Any) -> Any:
    if kind == "bytes32":
        return "0x" + value.hex()
    return str(value) if decimal_string else value


def _from_json(member: str, kind: str, value: Any) -> Any:
    """A member's value from its JSON form; ValueError (or TypeError) when it is not one."""
    if kind == "address":
        return to_checksum_address(value)
    if kind == "bytes32":
        return bytes.fromhex(str(value).removeprefix("0x"))
    number, bits = int(value), int(kind.removeprefix("uint"))
    if not 0 <= number < 2**bits:
        raise ValueError(f"{member} must be an unsigned {bits}-bit number, not {number}")
    return number


class _Struct:
    """What the protocol's structs share: the tuple and message forms derived from their fields."""

    struct_type: ClassVar[StructType]
    _values: ClassVar[Callable[[Any], tuple]]  # the fields' values in order (an attrgetter)
    _json: ClassVar[tuple[tuple[str, str, bool], ...]]  # (member, Solidity type, as a decimal string)

    def as_tuple(self) -> tuple:
        """The struct as the contract's ABI takes it."""
        return self._values(self)

    def as_message(self) -> dict[str, Any]:
        """The struct as EIP-712 message data (field names of the Solidity struct)."""
        return {member: value for (member, _), value in zip(self.struct_type.members, self.as_tuple())}

    def as_json(self) -> dict[str, Any]:
        """The struct for JSON (the relayer's API): field names of the Solidity struct, bytes32
        as 0x-hex, and request ids and token totals as decimal strings."""
        return {member: _to_json(kind, decimal_string, value)
                for (member, kind, decimal_string), value in zip(self._json, self.as_tuple())}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Any:
        """Parses `as_json` output (numbers may also be JSON numbers); raises ValueError (or
        KeyError/TypeError) on a missing or malformed field, or a number out of its type's range."""
        return cls(*(_from_json(member, kind, data[member]) for member, kind, _ in cls._json))


@_typed_struct
@dataclass(frozen=True)
class Attestation(_Struct):
    """What a relayer signs: request `request_id` ran `model_id`@`version` on the input hashing
    to `input_hash` and delivered the output hashing to `output_hash`."""

    request_id: int = _solidity("uint256", decimal_string=True)
    model_id: int = _solidity("uint256")
    version: int = _solidity("uint32")
    input_hash: bytes = _solidity("bytes32")
    output_hash: bytes = _solidity("bytes32")


@_typed_struct
@dataclass(frozen=True)
class Receipt(_Struct):
    """What a caller signs to pay: over the channel (caller, relayer, model) it has made `calls`
    calls and owes `amount` in total; settleable until `deadline` (unix seconds). The escrow's
    `settleReceipts` pays the increase since the channel's last settled receipt."""

    caller: str = _solidity("address")
    relayer: str = _solidity("address")
    model_id: int = _solidity("uint256")
    calls: int = _solidity("uint256", decimal_string=True)
    amount: int = _solidity("uint256", decimal_string=True)
    deadline: int = _solidity("uint64")

    def next(self, price: int, deadline: int) -> "Receipt":
        """The receipt for one more call at `price`."""
        return Receipt(self.caller, self.relayer, self.model_id, self.calls + 1, self.amount + price, deadline)


# The escrow's rules on receipts' numbers: every receipt call pays at least MIN_RECEIPT_PRICE
# (InferenceEscrow.MIN_RECEIPT_PRICE), and a receipt taking its channel past MAX_CALLS calls or
# MAX_AMOUNT tokens never settles (the escrow skips it as NotNewer).
MIN_RECEIPT_PRICE = 1
MAX_CALLS = 2**64 - 1
MAX_AMOUNT = 2**160 - 1


def opening_receipt(caller: str, relayer: str, model_id: int) -> Receipt:
    """The state of a channel before its first receipt: nothing called, nothing owed."""
    return Receipt(to_checksum_address(caller), to_checksum_address(relayer), model_id, 0, 0, 0)


ATTESTATION: StructType = Attestation.struct_type
RECEIPT: StructType = Receipt.struct_type
ATTESTATION_TYPES, ATTESTATION_TYPEHASH = ATTESTATION.types, ATTESTATION.typehash
RECEIPT_TYPES, RECEIPT_TYPEHASH = RECEIPT.types, RECEIPT.typehash
_DOMAIN_TYPE = StructType("EIP712Domain", [("name", "string"), ("version", "string"), ("chainId", "uint256"),
                                           ("verifyingContract", "address")])


# --- the domain and digests ----------------------------------------------------------------


def struct_hash(item: _Struct) -> bytes:
    """hashStruct of a Receipt or an Attestation."""
    return item.struct_type.hash(item.as_tuple())


class Domain:
    """The escrow's EIP-712 domain on one chain: ("ModelHub", "1", chain id, escrow address).
    Digests are computed from its separator, worked out once."""

    def __init__(self, chain_id: int, escrow: str) -> None:
        self.chain_id = int(chain_id)
        self.escrow = to_checksum_address(escrow)
        self.separator = _DOMAIN_TYPE.hash((DOMAIN_NAME, DOMAIN_VERSION, self.chain_id, self.escrow))
        self._prefix = b"\x19\x01" + self.separator

    def as_dict(self) -> dict[str, Any]:
        """The domain as eth_account's and wallets' typed-data encoders take it."""
        return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": self.chain_id,
                "verifyingContract": self.escrow}

    def digest(self, item: _Struct) -> bytes:
        """The 32-byte digest signed for `item` (what `InferenceEscrow.hashReceipt` /
        `hashAttestation` return)."""
        return keccak(self._prefix + item.struct_type.hash(item.as_tuple()))

    def digest_of(self, struct_type: StructType, values: Sequence[Any]) -> bytes:
        """`digest` from a struct's field values, without building the dataclass (hot paths)."""
        return keccak(self._prefix + struct_type.hash(values))

    def signable_message(self, item: _Struct) -> SignableMessage:
        """The EIP-712 message of `item`, as any account signs it."""
        return SignableMessage(b"\x01", self.separator, struct_hash(item))

    def call_id(self, receipt: Receipt) -> int:
        """The request id an attestation of an off-chain call carries: the receipt's digest as
        a number, so the signed attestation names the exact receipt that paid for the call. No
        on-chain request has such an id, so the attestation cannot settle anything on chain."""
        return int.from_bytes(self.digest(receipt), "big")


@lru_cache(maxsize=64)
def _domain(chain_id: int, escrow: str) -> Domain:
    return Domain(chain_id, escrow)


def domain(chain_id: int, escrow: str) -> dict[str, Any]:
    """The escrow's EIP-712 domain on chain `chain_id`, as eth_account takes it."""
    return _domain(chain_id, escrow).as_dict()


def domain_separator(chain_id: int, escrow: str) -> bytes:
    """The escrow's EIP-712 domain separator on chain `chain_id`."""
    return _domain(chain_id, escrow).separator


def digest(item: _Struct, chain_id: int, escrow: str) -> bytes:
    """The 32-byte digest signed for a Receipt or an Attestation in the escrow's domain."""
    return _domain(chain_id, escrow).digest(item)


def signable_message(item: _Struct, chain_id: int, escrow: str) -> SignableMessage:
    """The EIP-712 message of a Receipt or an Attestation, as any account signs it."""
    return _domain(chain_id, escrow).signable_message(item)


def call_id(receipt: Receipt, chain_id: int, escrow: str) -> int:
    """`Domain.call_id`: the request id of the attestation of the call `receipt` paid for."""
    return _domain(chain_id, escrow).call_id(receipt)


# --- disputes: settlement records and vote commitments -------------------------------------


@dataclass(frozen=True)
class SettledCall:
    """The facts of a settled on-chain call (DisputeCourt's `challengeRequest` argument, the
    struct SettlementRecord.Facts): its request, locked price, input and output hashes, the
    relayer whose attestation settled it and the settlement block's time."""

    request_id: int
    model_id: int
    version: int
    price: int
    input_hash: bytes
    output_hash: bytes
    relayer: str
    settled_at: int

    def as_tuple(self) -> tuple:
        """The struct as the court's ABI takes it."""
        return (self.request_id, self.model_id, self.version, self.price, self.input_hash, self.output_hash,
                to_checksum_address(self.relayer), self.settled_at)

    def record(self) -> int:
        """The escrow's 240-bit settlement record of these facts (`settlementRecord`): the top
        240 bits of keccak256(abi.encode(every field, in order))."""
        words = (_uint_word(self.request_id) + _uint_word(self.model_id) + _uint_word(self.version)
                 + _uint_word(self.price) + _bytes32_word(self.input_hash) + _bytes32_word(self.output_hash)
                 + _address_word(self.relayer) + _uint_word(self.settled_at))
        return int.from_bytes(keccak(words), "big") >> 16

    def attestation(self) -> Attestation:
        """The attestation that settled the call."""
        return Attestation(self.request_id, self.model_id, self.version, self.input_hash, self.output_hash)


# A juror's vote (DisputeCourt.VOTE_OUTPUT_MATCHES / VOTE_OUTPUT_WRONG): whether the attested
# output is what the model version gives on the input.
VOTE_OUTPUT_MATCHES = 1
VOTE_OUTPUT_WRONG = 2


def vote_commitment(dispute_id: int, juror: str, vote: int, salt: bytes) -> bytes:
    """What a juror commits to (DisputeCourt.voteCommitment): keccak256(abi.encode(disputeId,
    juror, vote, salt)). Naming the juror stops another juror from copying the commitment."""
    return keccak(_uint_word(dispute_id) + _address_word(juror) + _uint_word(vote) + _bytes32_word(salt))


# --- signing and recovery ------------------------------------------------------------------


def sign(private_key: Any, item: _Struct, chain_id: int, escrow: str) -> bytes:
    """The 65-byte signature (r, s, v) of a Receipt or an Attestation by `private_key`,
    through eth_account."""
    return bytes(Account.sign_message(signable_message(item, chain_id, escrow), private_key).signature)


def recover_signer(item: _Struct, signature: bytes, chain_id: int, escrow: str) -> str:
    """The checksummed address that signed `item`, as eth_account recovers it (it also takes
    the high-s twins the escrow refuses); raises ValueError for a malformed signature."""
    return Account.recover_message(signable_message(item, chain_id, escrow), signature=signature)


def recover_valid_signer(item: _Struct, signature: bytes, chain_id: int, escrow: str) -> str | None:
    """The address that signed `item`, or None for a signature the escrow refuses."""
    return recover_digest_signer(digest(item, chain_id, escrow), signature)


class KeySigner:
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

    def sign(self, item: _Struct, chain_id: int, escrow: str) -> bytes:
        """The signature of a Receipt or an Attestation in the escrow's domain."""
        return self.sign_digest(_domain(chain_id, escrow).digest(item))

    sign_receipt = sign_attestation = sign  # the names call sites read best with


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
