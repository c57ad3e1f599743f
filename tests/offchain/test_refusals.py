"""The refusal table: the codes docs/fast-calls.md documents with their statuses, and the SDK
exception a client raises for each, saying what to do."""

import re
from pathlib import Path

import pytest

from modelhub import errors as e
from modelhub.refusals import REFUSALS, RESERVATION_LAG_CODES, error_for, refuse

DOCS = Path(__file__).resolve().parents[2] / "docs" / "fast-calls.md"
WHERE = "the relayer at http://r refused the fast call of model 7"
SESSION = dict(caller="0xCa11", signer="0x5163", relayer="0xRe1a", model_id=7, receipt_lifetime=600, session_price=3)


def test_every_documented_code_has_its_documented_status():
    rows = re.findall(r"^\| (\d{3}) \| `([a-z_]+)` \|", DOCS.read_text(), re.M)
    assert len(rows) >= 14
    for status, code in rows:
        assert REFUSALS[code].status == int(status), code
        assert REFUSALS[code].current


def test_the_relayer_refuses_with_the_tables_status_and_the_codes_fields():
    error = refuse("insufficient_credit", "reserve more", available="1", needed="2")
    assert isinstance(error, e.FastCallError)
    assert (error.status, error.code, error.message, error.details) == (402, "insufficient_credit", "reserve more",
                                                                         {"available": "1", "needed": "2"})


@pytest.mark.parametrize("code, error_class, says", [
    ("insufficient_credit", e.InsufficientReservationError, "available 1, needed 2 base units"),
    ("insufficient_reservation", e.InsufficientReservationError, "reserve more (Hub.reserve)"),
    ("no_reservation", e.NoReservationError, "no reservation of 0xCa11"),
    ("receipts_not_enabled", e.NoReservationError, "reserve credit for it"),
    ("unknown_model", e.UnknownModelError, "knows no model 7"),
    ("model_inactive", e.ModelInactiveError, "set_active"),
    ("bad_input", e.InvalidInputError, "does not fit the model: nope"),
    ("signer_expiring", e.ReceiptSignerError, "replaced at ?"),
    ("wrong_amount", e.FastCallError, "this session pays 3"),
    ("deadline_too_soon", e.FastCallError, "longer receipt_lifetime than 600 s"),
    ("invalid_signature", e.FastCallError, "this session signs with 0x5163"),
    ("wrong_channel", e.FastCallError, "does not serve relayer 0xRe1a"),
    ("busy", e.FastCallError, "with HTTP 503 busy: nope"),
    ("something_new", e.FastCallError, "with HTTP 418 something_new: nope"),
])
def test_a_client_raises_the_sdk_error_of_each_code(code, error_class, says):
    status = REFUSALS[code].status if code in REFUSALS else 418
    error = error_for(status, {"error": "nope", "code": code, "available": "1", "needed": "2"}, WHERE, **SESSION)
    assert type(error) is error_class
    assert str(error).startswith(WHERE) and says in str(error)


def test_the_codes_a_fresh_reservation_may_explain_include_the_old_names():
    assert {"no_reservation", "insufficient_credit", "insufficient_reservation", "receipts_not_enabled",
            "unknown_signer"} == RESERVATION_LAG_CODES
