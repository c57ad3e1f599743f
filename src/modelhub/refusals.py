"""The codes a relayer's HTTP API refuses a call with: one table (refusals.toml), read by the
relayer (the HTTP status of each code) and by the client (the SDK exception, what to tell the user).

A refusal is JSON `{"error": "<message>", "code": "<code>", ...fields}`; a refused fast call is
not charged. docs/fast-calls.md lists the codes of POST /v1/models/{modelId}/infer.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from . import errors as e

__all__ = ["REFUSALS", "RENAMED", "RESERVATION_LAG_CODES", "Refusal", "error_for", "lookup", "refuse"]


@dataclass(frozen=True)
class Refusal:
    """One refusal code: its HTTP status, what it means, the SDK exception a client raises for
    it, and `advice`: the client's message after "the relayer at ... refused ...: ", a format
    string over the answer's fields and the session's (`caller`, `signer`, `relayer`,
    `model_id`, `receipt_lifetime`, `session_price`, `said`: the relayer's own message);
    empty for the generic message."""

    code: str
    status: int
    meaning: str
    error: type[e.ModelHubError] = e.FastCallError
    advice: str = ""
    # True: the refusal may only mean that the relayer has not seen yet the block in which the
    # caller reserved credit or registered its key (a client that just did may wait and retry).
    reservation_lag: bool = False
    # False: older relayers sent it, today's never do (clients still understand it).
    current: bool = True

    @classmethod
    def from_row(cls, code: str, row: Mapping[str, Any]) -> "Refusal":
        """The refusal of a refusals.toml table: the advice's line breaks are spaces."""
        return cls(code, int(row["status"]), str(row["meaning"]), getattr(e, row.get("error", "FastCallError")),
                   " ".join(str(row.get("advice", "")).split()), bool(row.get("reservation_lag", False)),
                   bool(row.get("current", True)))


def _load_table() -> dict[str, Refusal]:
    text = resources.files(__package__).joinpath("refusals.toml").read_text(encoding="utf-8")
    return {code: Refusal.from_row(code, row) for code, row in tomllib.loads(text).items()}


# Old names of codes, as older relayers sent them.
RENAMED = {"insufficient_reservation": "insufficient_credit", "receipts_not_enabled": "no_reservation"}

REFUSALS: dict[str, Refusal] = _load_table()
RESERVATION_LAG_CODES = frozenset(
    {code for code, refusal in REFUSALS.items() if refusal.reservation_lag}
    | {old for old, new in RENAMED.items() if REFUSALS[new].reservation_lag})


def lookup(code: str) -> Refusal | None:
    """The table's entry for `code` (also under its old name), or None for a code it lacks."""
    return REFUSALS.get(RENAMED.get(code, code))


def refuse(code: str, message: str, **fields: Any) -> e.FastCallError:
    """The relayer's side: the refusal `code` with its HTTP status from the table, `message`
    saying what to do, and the extra JSON `fields` the code carries."""
    return e.FastCallError(message, REFUSALS[code].status, code, fields)


class _Fields(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def error_for(status: int, answer: Mapping[str, Any], where: str, **session: Any) -> e.ModelHubError:
    """The client's side: the SDK exception for a relayer's refusal `answer` (its JSON body)
    with HTTP `status`. `where` says who refused what ("the relayer at ... refused the fast call
    of model 1"); `session` holds the fields the advice may name (see `Refusal`)."""
    code = str(answer.get("code", ""))
    said = str(answer.get("error", "")) or f"HTTP {status}"
    details = {key: value for key, value in answer.items() if key not in ("error", "code")}
    refusal = lookup(code)
    if refusal is None or not refusal.advice:
        return e.FastCallError(f"{where} with HTTP {status} {code or ''}: {said}".rstrip(), status, code, details)
    message = f"{where}: " + refusal.advice.format_map(_Fields({**details, **session, "said": said}))
    if issubclass(refusal.error, e.FastCallError):
        return refusal.error(message, status, code, details)
    if issubclass(refusal.error, e.ContractRevertError):
        return refusal.error(message, code, {"modelId": session.get("model_id"), **details})
    return refusal.error(message)
