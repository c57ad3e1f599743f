"""Reading a fast call's request body: input, receipt and signature checked for form (money is
the book's job), and the receipt's EIP-712 digest built from raw words.

Anything malformed is refused as bad_request; a receipt for another relayer or model as wrong_channel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ... import codec
from ...errors import InvalidInputError
from ...refusals import refuse
from ...typed_data import MAX_AMOUNT, MAX_CALLS, RECEIPT, Domain

MAX_UINT256 = 2**256 - 1


@dataclass(frozen=True)
class ReceiptCall:
    """A parsed request body."""

    inputs: dict[str, Any]
    version: int
    caller: str  # lowercase 0x-hex
    model_id: int
    calls: int
    amount: int
    deadline: int
    signature: bytes
    digest: bytes  # the receipt's EIP-712 digest


class BodyReader:
    """Parses the bodies of the fast calls one relayer serves."""

    def __init__(self, relayer: str, domain: Domain) -> None:
        self.relayer = relayer.lower()
        self.domain = domain

    def read(self, path_model_id: int, body: bytes) -> ReceiptCall:
        """The call in a request body; FastCallError 400 bad_request / wrong_channel."""
        # Nesting is checked before parsing (see codec.MAX_NESTING); a body with few brackets
        # cannot be deep, which spares the character scan on every small call.
        if body.count(b"[") + body.count(b"{") > codec.MAX_NESTING:
            try:
                codec._check_nesting(body.decode("utf-8", "replace"))
            except InvalidInputError as error:
                raise refuse("bad_request", str(error)) from None
        try:
            data = json.loads(body, parse_constant=_refuse_constant)
            inputs, receipt, signature_text = data["input"], data["receipt"], data["signature"]
            version = data.get("version") or 0
            if not isinstance(inputs, dict) or not isinstance(receipt, dict) or type(version) is not int:
                raise ValueError("input and receipt must be JSON objects, version a number")
            if not 0 <= version < 2**32:
                raise ValueError("version must be a uint32")
            caller = address(receipt["caller"], "caller")
            relayer = address(receipt["relayer"], "relayer")
            model_id = uint(receipt["modelId"], "modelId", MAX_UINT256)
            calls = uint(receipt["calls"], "calls", MAX_CALLS)
            amount = uint(receipt["amount"], "amount", MAX_AMOUNT)
            deadline = uint(receipt["deadline"], "deadline", 2**64 - 1)
            if not isinstance(signature_text, str) or signature_text[:2] not in ("0x", "0X"):
                raise ValueError("signature must be 0x-hex")
            signature = bytes.fromhex(signature_text[2:])
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
            detail = f"missing {error}" if isinstance(error, KeyError) else str(error)
            raise refuse("bad_request", f"malformed request ({detail[:200]}); send "
                         '{"input": {...}, "receipt": {"caller", "relayer", "modelId", "calls", "amount", '
                         '"deadline"}, "signature": "0x..."} as in docs/fast-calls.md') from None
        if relayer != self.relayer or model_id != path_model_id:
            raise refuse("wrong_channel", f"the receipt names relayer {relayer} and model {model_id}; this is "
                         f"relayer {self.relayer} serving model {path_model_id}: sign a receipt for them")
        digest = self.domain.digest_of(RECEIPT, (caller, relayer, model_id, calls, amount, deadline))
        return ReceiptCall(inputs, version, caller, model_id, calls, amount, deadline, signature, digest)


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


def address(value: Any, name: str) -> str:
    """A 0x-address as lowercase hex; ValueError otherwise."""
    if not isinstance(value, str) or len(value) != 42 or value[:2] not in ("0x", "0X"):
        raise ValueError(f"{name} must be a 0x-address of 40 hex digits")
    int(value[2:], 16)  # raises ValueError on a non-hex digit
    return "0x" + value[2:].lower()


def uint(value: Any, name: str, maximum: int) -> int:
    """A decimal string or a JSON integer within 0..maximum; ValueError otherwise."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 78:
        number = int(value)
    elif type(value) is int:
        number = value
    else:
        raise ValueError(f"{name} must be a whole number (a decimal string or a JSON integer)")
    if not 0 <= number <= maximum:
        raise ValueError(f"{name} must be between 0 and {maximum}")
    return number
