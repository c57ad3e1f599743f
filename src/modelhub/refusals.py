"""The codes a relayer's HTTP API refuses a call with: one table, read by the relayer (the HTTP
status of each code) and by the client (the SDK exception and what to tell the user).

A refusal is JSON `{"error": "<message>", "code": "<code>", ...fields}`; a refused fast call is
not charged. docs/fast-calls.md lists the codes of POST /v1/models/{modelId}/infer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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


_TABLE = (
    Refusal("bad_request", 400, "malformed body, receipt or signature; a version beyond the latest"),
    Refusal("wrong_channel", 400, "the receipt names another relayer or model", advice=(
        "the receipt names another relayer or model ({said}); the URL does not serve relayer "
        "{relayer}: open the session with its address")),
    Refusal("deadline_too_soon", 400, "the receipt's deadline leaves no time to settle it; `minDeadline`", advice=(
        "the receipt's deadline is too soon for the relayer to settle it (it needs {minDeadline}, "
        "unix time); open the session with a longer receipt_lifetime than {receipt_lifetime} s")),
    Refusal("deadline_too_far", 400, "the receipt's deadline is beyond what the relayer holds; `maxDeadline`", advice=(
        "the receipt's deadline is further than it holds receipts (at most {maxDeadline}, unix "
        "time); open the session with a shorter receipt_lifetime than {receipt_lifetime} s")),
    Refusal("invalid_signature", 401, "signed neither by the receipt's caller nor by its receipt signer", advice=(
        "it does not accept {caller}'s signature of the receipt ({said}); receipts must be signed "
        "by the caller's key or by its receipt signer in force (this session signs with {signer}; "
        "contract wallets register one with Hub.set_receipt_signer)")),
    Refusal("signer_expiring", 401, "the receipt signer key is replaced too soon to settle; `signerChangesAt`",
            e.ReceiptSignerError, advice=(
        "the receipt signer key of {caller} is replaced at {signerChangesAt} (unix time), too soon "
        "for it to settle what this key signs; sign with the new key or the account's own key")),
    Refusal("no_reservation", 402, "the relayer counts on no reservation of the caller (none, or less than a "
            "call left)", e.NoReservationError, reservation_lag=True, advice=(
        "it counts on no reservation of {caller} for it (none, or less than a call left after an "
        "announced release); reserve credit for it (Hub.reserve) and wait for the transaction")),
    Refusal("insufficient_credit", 402, "the reservation cannot pay the call; `available`, `needed`",
            e.InsufficientReservationError, reservation_lag=True, advice=(
        "the reservation for it cannot pay another receipt (available {available}, needed "
        "{needed} base units: the reservation minus an announced release and what the relayer "
        "holds unsettled on all your channels with it); reserve more (Hub.reserve), after "
        "depositing (Hub.deposit) if your free credit is short")),
    Refusal("unknown_model", 404, "no model has this id (or its registration is not seen yet)",
            e.UnknownModelError, advice="it knows no model {model_id}; pick an id from list_models()"),
    Refusal("model_inactive", 409, "the model's owner switched it off", e.ModelInactiveError,
            advice="the model is switched off; its owner can switch it on with set_active"),
    Refusal("out_of_order", 409, "`channel` (the last accepted totals): sign `calls + 1`", advice=(
        "the channel moved on while this session signed ({said}); another client is using the "
        "same account, model and relayer: use one session per channel")),
    Refusal("wrong_amount", 409, "the amount does not grow by the price; `price`, `receiptPrice`, `channel`", advice=(
        "the receipt's amount does not fit the model's price ({said}; relayer price {price}, "
        "receipt price {receiptPrice}, this session pays {session_price}); open a new session")),
    Refusal("bad_input", 422, "the input does not fit the model", e.InvalidInputError,
            advice="the input does not fit the model: {said}"),
    Refusal("busy", 503, "the relayer serves as many fast calls as it takes; try again in a moment"),
    Refusal("model_unavailable", 503, "the model file cannot be fetched or does not match its digest", advice=(
        "the model file is unavailable there ({said}); try again later or use another relayer")),
    Refusal("not_registered", 403, "POST /v1/artifacts: no model version has the file's digest; `digest`",
            e.ArtifactUploadError),
    # Sent by older relayers only: a client that just registered a receipt signer key waits.
    Refusal("unknown_signer", 401, "the receipt signer key is not known yet", reservation_lag=True, current=False),
)

# Old names of codes, as older relayers sent them.
RENAMED = {"insufficient_reservation": "insufficient_credit", "receipts_not_enabled": "no_reservation"}

REFUSALS: dict[str, Refusal] = {refusal.code: refusal for refusal in _TABLE}
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
