"""FastSession, the caller side of fast calls, against the test chain and a real relayer process
(`modelhub relayer run`): answers checked against bare onnxruntime, channels, resumption,
price rises, tampered answers, the reservation a session pays from (reserved on opening, topped
up, never overdrawn), and contract wallets paying through a registered receipt signer key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import requests
from eth_utils import keccak

from modelhub import errors as e
from modelhub.codec import canonical_input, encode_output
from modelhub.deployments import save_deployment
from modelhub.errors import OutputVerificationError
from modelhub.hub import Hub, Upload
from modelhub.relayer_client import resolve_relayer
from modelhub.session import DEFAULT_RESERVE_CALLS, FastSession

from tests.support.relayers import RelayerProcess, wait_until
from tests.support.sdk import IRIS, IRIS_INPUT, PRICE

TOKEN = 10**18


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def relayer_process(relayer_hub: Hub, deployment, chain, tmp_path: Path) -> Iterator[RelayerProcess]:
    """TEST::3 bonded with its own URL as endpoint, running `modelhub relayer run`."""
    folder = tmp_path / "deployments"
    save_deployment(deployment, folder)
    process = RelayerProcess(chain.provider.http_uri, "TEST::3", tmp_path / "relayer-store", folder)
    bond = relayer_hub.min_bond
    relayer_hub.faucet(bond)
    relayer_hub.relayer_register(process.url, bond)
    process.start()
    yield process
    process.kill()


@pytest.fixture
def served_iris(uploader_hub: Hub, relayer_process: RelayerProcess) -> Upload:
    """The iris example at PRICE per call, its file uploaded to the running relayer."""
    return uploader_hub.upload_model(IRIS, "iris", PRICE, relayer_url=relayer_process.url)


@pytest.fixture
def rich_caller(caller_hub: Hub) -> Hub:
    """The caller with 1 token of credit: a thousand calls at PRICE."""
    caller_hub.faucet(TOKEN)
    caller_hub.deposit(TOKEN)
    return caller_hub


def bare_onnxruntime(inputs: dict) -> dict:
    """The iris model's outputs {name: value} from onnxruntime directly."""
    session = ort.InferenceSession(str(IRIS), providers=["CPUExecutionProvider"])
    feed = {name: np.asarray(value, dtype=np.float32) for name, value in inputs.items()}
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, feed)))


def same_as_bare(served: dict, bare: dict) -> bool:
    """Served outputs equal onnxruntime's: labels exactly, probabilities as the float32s they are."""
    return (served["label"] == [int(label) for label in bare["label"]]
            and [{int(k): np.float32(v) for k, v in row.items()} for row in served["probabilities"]]
            == [{int(k): np.float32(v) for k, v in row.items()} for row in bare["probabilities"]])


# ---------------------------------------------------------------- inputs


def test_an_input_has_one_canonical_form_whether_given_as_a_dict_or_as_bytes():
    from_dict = canonical_input(IRIS_INPUT)
    assert from_dict == b'{"X":[[5.1,3.5,1.4,0.2]]}'
    assert canonical_input(b'{ "X" : [[5.1, 3.5, 1.4, 0.2]] }') == from_dict
    assert canonical_input({"X": np.array([[5.1, 3.5, 1.4, 0.2]])}) == from_dict
    for bad in ({"X": [[1, 2], [3]]}, {"X": "text"}, b"[1, 2]", b"{not json", [1, 2]):
        with pytest.raises(e.InvalidInputError):
            canonical_input(bad)


# ---------------------------------------------------------------- opening a session


def test_a_relayer_is_found_by_url_or_by_its_registered_address(relayer_process, caller_hub, relayer):
    assert resolve_relayer(caller_hub, relayer_process.url + "/") == (relayer.address, relayer_process.url)
    assert resolve_relayer(caller_hub, relayer.address.lower()) == (relayer.address, relayer_process.url)
    assert resolve_relayer(caller_hub, None) == (relayer.address, relayer_process.url)

    with pytest.raises(e.RelayerMismatchError, match="neither a relayer's URL"):
        resolve_relayer(caller_hub, "relayer-one")
    with pytest.raises(e.RelayerMismatchError, match="not a registered relayer"):
        resolve_relayer(caller_hub, caller_hub.address)
    with pytest.raises(e.RelayerUnreachableError, match="cannot reach the relayer"):
        resolve_relayer(caller_hub, "http://127.0.0.1:9")


def test_a_session_refuses_to_open_when_it_could_not_work(served_iris, relayer_process, caller_hub,
                                                          uploader_hub):
    model = served_iris.model_id
    with pytest.raises(e.InsufficientCreditError, match="deposit more"):
        caller_hub.fast_session(model, relayer=relayer_process.url)
    # Nothing that waits a delay to undo happened: no credit is reserved until a session can open.
    assert caller_hub.reservations() == []

    caller_hub.faucet(PRICE)
    caller_hub.deposit(PRICE)
    with pytest.raises(e.PriceAboveMaxError, match="above your max_price"):
        caller_hub.fast_session(model, relayer=relayer_process.url, max_price=PRICE - 1)
    with pytest.raises(e.UnknownVersionError):
        caller_hub.fast_session(model, relayer=relayer_process.url, version=2)
    uploader_hub.set_active(model, False)
    with pytest.raises(e.ModelInactiveError):
        caller_hub.fast_session(model, relayer=relayer_process.url)
    assert caller_hub.reservations() == []
    assert caller_hub.balance() == PRICE


# ---------------------------------------------------------------- fast calls (need the relayer's fast route)


@pytest.fixture
def settling_relayer(relayer_hub: Hub, deployment, chain, tmp_path: Path) -> Iterator[RelayerProcess]:
    """Like relayer_process, settling every channel each second."""
    folder = tmp_path / "deployments"
    save_deployment(deployment, folder)
    process = RelayerProcess(chain.provider.http_uri, "TEST::3", tmp_path / "relayer-store", folder,
                             "--settle-interval", "1")
    bond = relayer_hub.min_bond
    relayer_hub.faucet(bond)
    relayer_hub.relayer_register(process.url, bond)
    process.start()
    yield process
    process.kill()


def answer_of(result) -> dict:
    """The relayer's 200 answer as it came, rebuilt from a verified result."""
    return {"modelId": result.attestation.model_id, "version": result.version, "output": result.outputs,
            "outputHash": "0x" + result.output_hash.hex(), "attestation": result.attestation.as_json(),
            "signature": "0x" + result.signature.hex()}


def test_fast_calls_are_answered_as_onnxruntime_answers_and_each_adds_exactly_one_price(
        served_iris, relayer_process, rich_caller, relayer):
    inputs = [{"X": [[5.1, 3.5, 1.4, 0.2]]}, {"X": [[6.7, 3.0, 5.2, 2.3]]}, {"X": [[5.9, 3.0, 4.2, 1.5]]}]
    with rich_caller.fast_session(served_iris.model_id, relayer=relayer_process.url) as session:
        # Opening reserved the default: DEFAULT_RESERVE_CALLS calls at the price.
        assert session.reserved == DEFAULT_RESERVE_CALLS * PRICE
        assert rich_caller.reservation(relayer=relayer).reserved == DEFAULT_RESERVE_CALLS * PRICE
        assert rich_caller.balance() == TOKEN - DEFAULT_RESERVE_CALLS * PRICE
        assert (session.relayer, session.price, session.channel.calls) == (relayer.address, PRICE, 0)
        assert session.version == 1  # pinned at opening
        for n in range(1, 31):
            x = inputs[n % 3]
            result = session.infer(x)
            assert same_as_bare(result.outputs, bare_onnxruntime(x))
            assert result.output_bytes == encode_output(result.outputs)
            assert result.output_hash == keccak(result.output_bytes)
            assert result.input_hash == keccak(encode_output(x))
            assert (result.receipt.calls, result.receipt.amount) == (n, n * PRICE)
            assert (result.channel.calls, result.channel.amount, result.price) == (n, n * PRICE, PRICE)
            assert result.attestation.request_id == int.from_bytes(rich_caller.receipt_digest(result.receipt), "big")
            assert (result.attestation.model_id, result.attestation.version) == (served_iris.model_id, 1)
            assert result.relayer == relayer.address
    with pytest.raises(e.ModelHubError, match="closed"):
        session.infer(IRIS_INPUT)


def test_a_new_session_resumes_the_channel_and_refuses_a_relayer_that_lost_it(
        uploader_hub, settling_relayer, rich_caller, relayer, deployment, chain, tmp_path):
    model = uploader_hub.upload_model(IRIS, "iris", PRICE, relayer_url=settling_relayer.url).model_id
    session = rich_caller.fast_session(model, relayer=relayer.address)
    for _ in range(3):
        session.infer(IRIS_INPUT)
    del session  # dropped without closing, as a crashed client would

    with rich_caller.fast_session(model, relayer=relayer.address) as resumed:
        assert (resumed.channel.calls, resumed.channel.amount) == (3, 3 * PRICE)
        assert resumed.infer(IRIS_INPUT).receipt.calls == 4

    # The relayer settles on its own; a relayer whose store is gone then shows an empty channel.
    wait_until(lambda: rich_caller.channel(rich_caller.address, relayer, model) == (4, 4 * PRICE),
               what="the relayer to settle the channel")
    settling_relayer.kill()
    folder = tmp_path / "deployments"
    amnesiac = RelayerProcess(chain.provider.http_uri, "TEST::3", tmp_path / "empty-store", folder)
    amnesiac.port, amnesiac.url = settling_relayer.port, settling_relayer.url  # its registered endpoint
    amnesiac.start()
    try:
        with pytest.raises(e.ChannelStateError, match="lost receipts"):
            rich_caller.fast_session(model, relayer=relayer.address)
    finally:
        amnesiac.kill()


def test_a_price_rise_is_paid_only_up_to_max_price(uploader_hub, served_iris, relayer_process,
                                                   rich_caller, chain):
    model = served_iris.model_id
    capped = rich_caller.fast_session(model, relayer=relayer_process.url)  # max_price: the price now
    willing = rich_caller.fast_session(model, relayer=relayer_process.url, max_price=2 * PRICE)
    assert capped.infer(IRIS_INPUT).price == PRICE

    uploader_hub.set_price(model, 2 * PRICE)
    # During the notice, receipts at the price before the rise still settle: keep paying it.
    assert capped.infer(IRIS_INPUT).price == PRICE

    chain.mine(timestamp=chain.blocks.head.timestamp + uploader_hub.price_notice_period + 1)
    view = f"{relayer_process.url}/v1/channels/{rich_caller.address}/{model}"
    wait_until(lambda: requests.get(view, timeout=5).json()["receiptPrice"] == str(2 * PRICE),
               what="the relayer to see the notice end")
    before = capped.channel
    with pytest.raises(e.PriceAboveMaxError, match="above your max_price"):
        capped.infer(IRIS_INPUT)
    assert capped.channel == before  # nothing signed for the refused price

    willing.refresh()  # the channel moved on under the other session
    result = willing.infer(IRIS_INPUT)
    assert (result.price, result.channel.amount) == (2 * PRICE, before.amount + 2 * PRICE)
    capped.close()
    willing.close()


def test_a_session_follows_the_channel_when_another_client_moved_it(served_iris, relayer_process, rich_caller):
    first = rich_caller.fast_session(served_iris.model_id, relayer=relayer_process.url)
    second = rich_caller.fast_session(served_iris.model_id, relayer=relayer_process.url)
    first.infer(IRIS_INPUT)
    assert second.infer(IRIS_INPUT).receipt.calls == 2  # out_of_order, resynced, signed again
    assert first.infer(IRIS_INPUT).receipt.calls == 3
    first.close()
    second.close()


def test_a_tampered_answer_is_refused(served_iris, relayer_process, rich_caller, caller):
    from modelhub.typed_data import Attestation, KeySigner
    from modelhub.typed_data import digest as attestation_digest
    from modelhub.typed_data import digest as receipt_digest

    with rich_caller.fast_session(served_iris.model_id, relayer=relayer_process.url) as session:
        result = session.infer(IRIS_INPUT)
        answer = answer_of(result)
        assert session.verify(answer, result.receipt, result.input_hash).outputs == result.outputs
        # The session's digests from raw words are the generic encoders' digests.
        assert session.receipt_digest(result.receipt) == receipt_digest(result.receipt, session.chain_id, session.escrow)
        assert session.attestation_digest(result.attestation) == attestation_digest(
            result.attestation, session.chain_id, session.escrow)

        def refused(changed: dict, receipt=result.receipt, input_hash=result.input_hash, match: str = ""):
            with pytest.raises(OutputVerificationError, match=match):
                session.verify({**answer, **changed}, receipt, input_hash)

        other_output = {**result.outputs, "label": [2]}
        other_hash = "0x" + keccak(encode_output(other_output)).hex()
        refused({"output": other_output}, match="hashes to")
        refused({"output": other_output, "outputHash": other_hash}, match="attestation")
        refused({"output": "nope"}, match="not a JSON object")
        refused({"signature": "0x1234"}, match="signed by an invalid signature")
        refused({"version": 2}, match="version 2")
        refused({}, input_hash=keccak(b'{"X":[[0,0,0,0]]}'), match="attestation")
        refused({}, receipt=result.receipt.next(PRICE, result.receipt.deadline), match="attestation")
        # A well-formed attestation of this very call, signed by someone else.
        att = Attestation.from_json(answer["attestation"])
        forged = KeySigner(caller.private_key).sign_digest(
            attestation_digest(att, session.chain_id, session.escrow))
        refused({"signature": "0x" + forged.hex()}, match=f"signed by {caller.address}")


def test_refused_calls_are_not_charged_and_say_what_to_do(served_iris, relayer_process, rich_caller):
    with rich_caller.fast_session(served_iris.model_id, relayer=relayer_process.url) as session:
        with pytest.raises(e.InvalidInputError, match="does not fit the model"):
            session.infer({"X": [[1.0, 2.0]]})
        assert session.infer(IRIS_INPUT).receipt.calls == 1  # the refused call cost nothing

        held = rich_caller.reservation(relayer=session.relayer)
        # The relayer stops counting on what is announced at once: less than a call is left.
        rich_caller.announce_release(session.relayer, held.reserved - PRICE // 2)

        def refused_for_credit() -> Exception | None:
            try:
                session.infer(IRIS_INPUT)  # until the relayer has seen the announcement
            except (e.InsufficientReservationError, e.NoReservationError) as error:
                # Less than a call left: the relayer says the reservation is short, or none.
                return error
            return None

        error = wait_until(refused_for_credit, timeout=30, what="the relayer to see the announcement")
        assert "reserve" in str(error) and "Hub.reserve" in str(error)
        assert session.refresh() == session.channel  # the relayer kept nothing of the refused call


# ---------------------------------------------------------------- the reservation a session pays from


def test_a_session_reserves_what_the_caller_chose_says_so_and_never_signs_beyond_it(
        served_iris, relayer_process, rich_caller, relayer):
    said: list[str] = []
    with rich_caller.fast_session(served_iris.model_id, relayer=relayer_process.url, reserve=3 * PRICE,
                                  top_up=False, progress=said.append) as session:
        assert session.reserved == 3 * PRICE
        assert len(said) == 1 and "Reserving 3000000000000000 base units" in said[0]
        for _ in range(3):
            session.infer(IRIS_INPUT)
        before = session.channel
        with pytest.raises(e.InsufficientReservationError, match="reserve more"):
            session.infer(IRIS_INPUT)  # refused before signing: nothing reaches the relayer
        assert session.channel == before
        assert session.refresh() == before
    assert rich_caller.reservation(relayer=relayer).reserved == 3 * PRICE  # nothing settled yet


def test_a_session_tops_its_reservation_up_from_free_credit(served_iris, relayer_process, rich_caller, relayer):
    said: list[str] = []
    with rich_caller.fast_session(served_iris.model_id, relayer=relayer_process.url, reserve=2 * PRICE,
                                  progress=said.append) as session:
        for n in range(1, 6):
            assert session.infer(IRIS_INPUT).receipt.calls == n
        assert session.reserved == 6 * PRICE and len(said) == 3
    assert rich_caller.reservation(relayer=relayer).reserved == 6 * PRICE


def test_a_session_uses_a_reservation_the_caller_made_itself(served_iris, relayer_process, rich_caller, relayer):
    rich_caller.reserve(relayer, 5 * PRICE)
    said: list[str] = []
    with rich_caller.fast_session(served_iris.model_id, relayer=relayer_process.url, progress=said.append) as session:
        assert (session.reserved, said) == (0, [])  # no transaction
        session.infer(IRIS_INPUT)


def test_a_session_without_enough_free_credit_to_reserve_says_deposit(served_iris, relayer_process, caller_hub):
    caller_hub.faucet(PRICE)
    caller_hub.deposit(PRICE)
    with pytest.raises(e.InsufficientCreditError, match="deposit more"):
        caller_hub.fast_session(served_iris.model_id, relayer=relayer_process.url, reserve=2 * PRICE)
    with caller_hub.fast_session(served_iris.model_id, relayer=relayer_process.url) as session:
        assert session.reserved == PRICE  # the default, capped at the free credit
        session.infer(IRIS_INPUT)


# ---------------------------------------------------------------- contract wallets


def test_a_contract_wallet_session_registers_its_owner_key_and_pays_through_it(
        uploader_hub, settling_relayer, wallet_hub, relayer, caller):
    model = uploader_hub.upload_model(IRIS, "iris", PRICE, relayer_url=settling_relayer.url).model_id
    said: list[str] = []
    with wallet_hub.fast_session(model, relayer=settling_relayer.url, reserve=5 * PRICE,
                                 progress=said.append) as session:
        assert session.caller == wallet_hub.address and session.signer_address == caller.address
        assert session.registered_signer and wallet_hub.receipt_signer().signer == caller.address
        assert any("receipt signer" in line for line in said)
        for _ in range(2):
            session.infer(IRIS_INPUT)
    wait_until(lambda: wallet_hub.channel(wallet_hub.address, relayer, model) == (2, 2 * PRICE),
               what="the relayer to settle the wallet's receipts")
    assert wallet_hub.reservation(relayer=relayer).reserved == 3 * PRICE


def test_a_session_refuses_to_sign_with_a_key_that_is_not_the_callers_receipt_signer(
        served_iris, relayer_process, wallet_hub, stranger):
    wallet_hub.set_receipt_signer(stranger)
    with pytest.raises(e.ReceiptSignerError, match="not by"):
        wallet_hub.fast_session(served_iris.model_id, relayer=relayer_process.url)
    assert wallet_hub.reservations() == []
