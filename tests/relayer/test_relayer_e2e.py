"""The relayer end to end: a real `modelhub relayer run` process on the test chain, real HTTP,
the example ONNX models run by onnxruntime, and the money checked on chain.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from eth_utils import keccak

from modelhub import codec
from modelhub.contracts import RequestStatus
from modelhub.errors import CallRejectedError
from modelhub.hub import Hub, encode_input
from modelhub.relayer.state import CallState
from modelhub.typed_data import Attestation, recover_signer

from tests.support.relayers import RelayerProcess, upload_registered, wait_until

ROOT = Path(__file__).resolve().parents[2]
IRIS = ROOT / "examples" / "iris" / "iris.onnx"
IRIS_INPUT = {"X": [[5.1, 3.5, 1.4, 0.2]]}
PRICE = 10**15
TOKEN = 10**18


@pytest.fixture
def uploader_hub(deployment, uploader):
    return Hub(deployment, uploader)


@pytest.fixture
def caller_hub(deployment, caller):
    hub = Hub(deployment, caller)
    hub.faucet(10 * TOKEN)
    hub.deposit(10 * TOKEN)
    return hub


def parts(price: int) -> tuple[int, int, int]:
    """(treasury, relayer, payees) by the rounding rule, with the test deployment's 500/1000 bps."""
    protocol, relayer = price * 500 // 10_000, price * 1_000 // 10_000
    return protocol, relayer, price - protocol - relayer


def test_a_paid_call_is_served_checked_and_paid(start_relayer, active_relayer, uploader_hub, caller_hub,
                                                 escrow, chain, uploader, treasury):
    relayer = start_relayer()
    model_id = upload_registered(uploader_hub, relayer.url, IRIS, "iris", PRICE)

    inferred = caller_hub.infer(model_id, IRIS_INPUT, timeout=60, poll=0.2,  # pays, waits, checks
                                relayer_url=relayer.url)
    request = inferred.request
    assert inferred.transaction and inferred.request_id == request.id
    assert caller_hub.get_request(request.id).status is RequestStatus.FULFILLED

    result = relayer.result(request.id)
    assert result["output"] == inferred.outputs
    assert result["status"] == "settled"
    direct = _run_directly(IRIS, IRIS_INPUT)
    assert result["output"]["label"] == direct["label"].tolist()
    for served, bare in zip(result["output"]["probabilities"], direct["probabilities"]):
        assert {int(k): np.float32(v) for k, v in served.items()} == {k: np.float32(v) for k, v in bare.items()}
    expected = codec.encode_output(result["output"])  # canonical bytes of what was delivered
    assert result["outputHash"] == "0x" + keccak(expected).hex()
    att = Attestation.from_json(result["attestation"])
    assert att == Attestation(request.id, model_id, 1, keccak(encode_input(IRIS_INPUT)), keccak(expected))
    signer = recover_signer(att, bytes.fromhex(result["signature"][2:]), chain.chain_id, escrow.address)
    assert signer == active_relayer.address

    protocol, relayer_part, payees = parts(PRICE)
    assert escrow.earningsOf(uploader) == payees
    assert escrow.earningsOf(active_relayer) == relayer_part
    assert escrow.earningsOf(treasury) == protocol
    assert "modelhub_requests_served_total 1.0" in _metrics(relayer)


def test_a_designated_call_whose_input_does_not_fit_is_rejected_and_refunded(start_relayer, active_relayer,
                                                                              uploader_hub, caller_hub, escrow, chain):
    relayer = start_relayer()
    model_id = upload_registered(uploader_hub, relayer.url, IRIS, "iris", PRICE)
    credit = caller_hub.balance()

    paid = []
    with pytest.raises(CallRejectedError) as rejected:  # 3 features, not 4; paid past the SDK's own check
        caller_hub.infer(model_id, {"X": [[5.1, 3.5, 1.4]]}, timeout=60, poll=0.2, relayer=active_relayer,
                         on_requested=paid.append, check_input=False)
    request = paid[0]
    # The credit as the request's block left it: the relayer may refund the call before a read
    # made now would see the price held.
    requested_in = chain.provider.get_receipt(request.transaction).block_number
    assert escrow.balanceOf(caller_hub.address, block_id=requested_in) == credit - PRICE
    assert rejected.value.reason == 1 and rejected.value.relayer == active_relayer.address
    assert caller_hub.get_request(request.id).status is RequestStatus.REJECTED

    assert caller_hub.balance() == credit
    result = relayer.result(request.id)
    assert result["status"] == "rejected"
    assert result["rejectReason"] == 1
    assert "expects" in result["error"]
    assert escrow.earningsOf(active_relayer) == 0


def test_an_open_call_it_cannot_serve_is_left_to_others_and_refunded_after_the_deadline(
        start_relayer, active_relayer, uploader_hub, caller_hub, chain):
    relayer = start_relayer()
    model_id = upload_registered(uploader_hub, relayer.url, IRIS, "iris", PRICE)
    credit = caller_hub.balance()

    # Open: nobody may reject it (paid past the SDK's own input check).
    request = caller_hub.request(model_id, {"X": [[5.1, 3.5, 1.4]]}, check_input=False)
    wait_until(lambda: relayer_state(relayer, request.id) == "dropped", what="the relayer to leave the call")
    assert "left to other relayers" in relayer.result(request.id)["note"]
    assert caller_hub.get_request(request.id).status is RequestStatus.PENDING  # not rejected
    assert "modelhub_requests_rejected_total{" not in _metrics(relayer)  # no rejection was even tried

    chain.mine(timestamp=chain.pending_timestamp + caller_hub.request_timeout + 1)
    caller_hub.refund(request.id)
    assert caller_hub.balance() == credit


def test_a_call_designated_to_another_relayer_is_ignored(start_relayer, bond, active_relayer, second_relayer,
                                                         uploader_hub, caller_hub):
    bond(second_relayer)
    relayer = start_relayer()
    model_id = upload_registered(uploader_hub, relayer.url, IRIS, "iris", PRICE)
    elsewhere = caller_hub.request(model_id, IRIS_INPUT, relayer=second_relayer)
    here = caller_hub.infer(model_id, IRIS_INPUT, timeout=60, poll=0.2, relayer_url=relayer.url,
                            relayer=active_relayer)

    assert caller_hub.get_request(here.request_id).status is RequestStatus.FULFILLED
    assert relayer_state(relayer, elsewhere.id) is None  # never stored, never served
    assert caller_hub.get_request(elsewhere.id).status is RequestStatus.PENDING


def test_a_call_nobody_serves_is_refunded_after_the_deadline(start_relayer, active_relayer, uploader_hub,
                                                             caller_hub, chain):
    relayer = start_relayer()
    model_id = upload_registered(uploader_hub, relayer.url, IRIS, "iris", PRICE)
    assert relayer.terminate() == 0  # the relayer goes down cleanly
    credit = caller_hub.balance()

    request = caller_hub.request(model_id, IRIS_INPUT)
    chain.mine(timestamp=chain.pending_timestamp + caller_hub.request_timeout + 1)
    caller_hub.refund(request.id)

    assert caller_hub.get_request(request.id).status is RequestStatus.REFUNDED
    assert caller_hub.balance() == credit
    # Back up, the relayer sees the refunded call and leaves it alone.
    restarted = start_relayer()
    wait_until(lambda: relayer_state(restarted, request.id) == "dropped", what="the refunded call to be dropped")


def test_a_relayer_killed_mid_batch_settles_every_call_exactly_once_after_restart(
        start_relayer, active_relayer, uploader_hub, caller_hub, escrow, uploader):
    relayer = start_relayer("--batch-size", "4")
    model_id = upload_registered(uploader_hub, relayer.url, IRIS, "iris", PRICE)
    ids = [caller_hub.request(model_id, {"X": [[5.1 + i / 10, 3.5, 1.4, 0.2]]}).id for i in range(24)]

    answered_before_kill: dict[int, tuple] = {}
    for _ in range(3):
        progress = len(_settled(relayer))
        wait_until(lambda: len(_settled(relayer)) > progress or len(_settled(relayer)) == len(ids),
                   what="settlement progress")
        relayer.kill()  # SIGKILL: no chance to finish anything
        for request_id, (state, answered_at, output_hash) in relayer.calls().items():
            if answered_at is not None:
                answered_before_kill.setdefault(request_id, (answered_at, output_hash))
        relayer = start_relayer("--batch-size", "4")

    wait_until(lambda: all(caller_hub.get_request(i).status is RequestStatus.FULFILLED for i in ids),
               timeout=120, what="every call to be fulfilled")
    wait_until(lambda: len(_settled(relayer)) == len(ids), what="the relayer to record every settlement")

    _, relayer_part, payees = parts(PRICE)
    assert escrow.earningsOf(active_relayer) == len(ids) * relayer_part
    assert escrow.earningsOf(uploader) == len(ids) * payees
    final = relayer.calls()
    for request_id, (answered_at, output_hash) in answered_before_kill.items():
        assert final[request_id][1:] == (answered_at, output_hash), "an answered call was run again"


def test_two_relayers_on_the_same_calls_settle_each_call_once(start_relayer, bond, active_relayer, second_relayer,
                                                              uploader_hub, caller_hub, escrow, uploader):
    bond(second_relayer)
    first = start_relayer()
    model_id = upload_registered(uploader_hub, first.url, IRIS, "iris", PRICE)
    # The second relayer does not hold the model file: it fetches it from the first and checks it.
    second = start_relayer("--fetch-from", first.url, account="TEST::7", name="b")
    ids = [caller_hub.request(model_id, IRIS_INPUT, file_from=first.url).id for _ in range(10)]

    wait_until(lambda: all(caller_hub.get_request(i).status is RequestStatus.FULFILLED for i in ids),
               timeout=120, what="every call to be fulfilled")
    # The loser of each race closes the call at its next settlement, or once it fetched the file;
    # on a loaded machine that may wait out a retry backoff (up to 60 s) first.
    wait_until(lambda: not _open_calls((first, second), ids), timeout=180,
               what="both relayers to close every call",
               explain=lambda: f"open: {_open_calls((first, second), ids)}\n--- relayer a\n{first.log()[-4000:]}"
                               f"\n--- relayer b\n{second.log()[-4000:]}")

    settled_first, settled_second = _settled(first), _settled(second)
    assert settled_first | settled_second == set(ids)
    assert not settled_first & settled_second
    _, relayer_part, payees = parts(PRICE)
    assert escrow.earningsOf(active_relayer) == len(settled_first) * relayer_part
    assert escrow.earningsOf(second_relayer) == len(settled_second) * relayer_part
    assert escrow.earningsOf(uploader) == len(ids) * payees


# ---------------------------------------------------------------- helpers


def _run_directly(model: Path, inputs: dict) -> dict:
    """The model's outputs from a bare onnxruntime session: what the relayer must match."""
    import onnxruntime as ort

    session = ort.InferenceSession(model.read_bytes(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {"X": np.asarray(inputs["X"], dtype=np.float32)})
    return dict(zip(names, values))


def _settled(relayer: RelayerProcess) -> set[int]:
    return {i for i, (state, _, _) in relayer.calls().items() if state == "settled"}


def _open_calls(relayers, ids) -> dict[str, dict[int, str | None]]:
    """Per relayer, the calls among `ids` its state file holds open (None: not seen at all)."""
    found = {}
    for relayer in relayers:
        states = {i: row[0] for i, row in relayer.calls().items()}
        found[relayer.url] = {i: states.get(i) for i in ids if i not in states or CallState(states[i]).open}
    return {url: calls for url, calls in found.items() if calls}


def relayer_state(relayer: RelayerProcess, request_id: int) -> str | None:
    row = relayer.calls().get(request_id)
    return row[0] if row else None


def _metrics(relayer: RelayerProcess) -> str:
    import requests

    return requests.get(f"{relayer.url}/metrics", timeout=5).text
