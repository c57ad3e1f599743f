"""Helpers of the contract tests: a strict custom-error matcher, event readers, and the fee
rule written out again in Python from the spec's text (not from FeeSplit.sol)."""

from __future__ import annotations

import re
from contextlib import contextmanager

from ape.exceptions import ContractLogicError, CustomError
from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak, to_checksum_address

BPS = 10_000

# InferenceEscrow.SkipReason
NOT_PENDING, DEADLINE_PASSED, MISMATCH, INVALID_SIGNATURE, NOT_ACTIVE_RELAYER, NOT_DESIGNATED = 1, 2, 3, 4, 5, 6
# getRequest status
PENDING, FULFILLED, REJECTED, REFUNDED = 1, 2, 3, 4


def _plain(value):
    """Accounts and contracts compare as their address."""
    return getattr(value, "address", value)


@contextmanager
def reverts(error, **inputs):
    """Expects the block to revert with exactly the custom error `error` (a contract's error
    class, e.g. `escrow.InferenceEscrow_ZeroAmount`) and, for each keyword, that argument.

    Stricter than `ape.reverts(error)`, which lets any revert that Ape could not decode into a
    custom error pass, and matches error classes of another contract by nothing at all."""
    name = error.__name__
    try:
        yield
    except ContractLogicError as exc:
        if isinstance(exc, CustomError):
            actual, actual_inputs = type(exc).__name__, exc.inputs
        else:
            actual, actual_inputs = _decode_raw(exc, error)
        assert actual == name, f"expected {name}, but the revert was {actual}({actual_inputs})"
        for key, expected in inputs.items():
            assert key in actual_inputs, f"{name} has no argument {key!r}: {actual_inputs}"
            got, want = _plain(actual_inputs[key]), _plain(expected)
            if isinstance(got, str) and isinstance(want, str):
                got, want = got.lower(), want.lower()
            assert got == want, f"{name}.{key} is {got!r}, expected {want!r}"
    else:
        raise AssertionError(f"did not revert; expected {name}")


def _decode_raw(exc: ContractLogicError, error) -> tuple[str, dict]:
    """Ape leaves reverts of read-only calls undecoded: anvil reports them as
    "custom error 0x<selector>: <the argument bytes as characters>". Match the selector against
    the expected error's and decode the arguments."""
    message = str(getattr(exc, "revert_message", "") or "")
    match = re.match(r"custom error 0x([0-9a-fA-F]{8}):? ?(.*)\Z", message, re.S)
    if not match:
        raise AssertionError(f"expected {error.__name__}, but the revert was {exc!r}") from exc
    abi = error.abi
    types = [ipt.canonical_type for ipt in abi.inputs]
    selector = keccak(text=f"{abi.name}({','.join(types)})")[:4]
    if bytes.fromhex(match.group(1)) != selector:
        return f"<error 0x{match.group(1)}>", {}
    text = match.group(2)
    if not text.isascii():
        # anvil renders the argument bytes as (lossy) UTF-8, so bytes >= 0x80 are not
        # recoverable: report no arguments, so that a keyword check fails instead of lying.
        return abi.name, {}
    try:
        values = abi_decode(types, text.encode("ascii"))
    except (ValueError, DecodingError):
        return abi.name, {}
    decoded = {}
    for ipt, value in zip(abi.inputs, values):
        decoded[ipt.name] = to_checksum_address(value) if ipt.type == "address" else value
    return abi.name, decoded


def events(tx, event) -> list:
    """The logs of `event` (a contract's event type) in the receipt, in order."""
    return list(tx.events.filter(event))


def one_event(tx, event):
    found = events(tx, event)
    assert len(found) == 1, f"expected one {event.name}, got {found}"
    return found[0]


def same(a, b) -> bool:
    return str(_plain(a)).lower() == str(_plain(b)).lower()


def fee_split(price: int, protocol_bps: int, relayer_bps: int, shares: list[int]):
    """The rule of the interface, from its text: the treasury's part and the relayer's part are
    each `price * bps / 10_000` rounded down; the payees get the rest. Within the payees' part
    each payee after the first gets its share rounded down; the first gets what is left.

    Returns (treasury, relayer, [payee parts in payee order])."""
    treasury_part = (price * protocol_bps) // BPS
    relayer_part = (price * relayer_bps) // BPS
    payee_part = price - treasury_part - relayer_part
    others = [(payee_part * share) // BPS for share in shares[1:]]
    first = payee_part - sum(others)
    return treasury_part, relayer_part, [first, *others]
