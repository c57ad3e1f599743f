"""Fast calls end to end: a real `modelhub relayer run` process on the test chain, real HTTP,
receipts signed with anvil's dev keys, the iris model run by onnxruntime, and settlement checked
on chain to the wei (earnings, credit, channels, modelStats).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
from eth_utils import keccak

from tests.support.cast import DEV_KEYS
from modelhub import codec
from modelhub.hub import Hub
from modelhub.typed_data import Attestation, KeySigner, Receipt, recover_digest_signer
from modelhub.typed_data import digest as eip712_digest

from tests.support.relayers import RelayerProcess, upload_registered, wait_until

ROOT = Path(__file__).resolve().parents[2]
IRIS = ROOT / "examples" / "iris" / "iris.onnx"
IRIS_INPUT = {"X": [[5.1, 3.5, 1.4, 0.2]]}
PRICE = 10**15
TOKEN = 10**18
RESERVED = 5 * TOKEN  # what `caller_hub` reserves for the relayer
CALLER_KEY = DEV_KEYS[2]  # the `caller` fixture's account
STRANGER_KEY = DEV_KEYS[6]
QUIET = ("--settle-threshold", str(10**30), "--settle-interval", "3600")  # settles only when told


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def uploader_hub(deployment, uploader):
    return Hub(deployment, uploader)


@pytest.fixture
def caller_hub(deployment, caller, active_relayer):
    hub = Hub(deployment, caller)
    hub.faucet(10 * TOKEN)
    hub.deposit(10 * TOKEN)
    hub.reserve(active_relayer, RESERVED)
    return hub


@pytest.fixture
def iris(start_relayer, active_relayer, uploader_hub):
    """(relayer process, model id): a relayer holding the iris model."""

    def make(*extra: str) -> tuple[RelayerProcess, int]:
        relayer = start_relayer(*extra)
        return relayer, upload_registered(uploader_hub, relayer.url, IRIS, "iris", PRICE)

    return make


class Channel:
    """A caller's side of a channel: signs the receipt for each next call."""

    def __init__(self, chain, deployment, relayer: str, model_id: int, key: str = CALLER_KEY,
                 caller: str | None = None):
        self.chain, self.deployment, self.model_id = chain, deployment, model_id
        self.signer = KeySigner(key)
        self.caller = caller or self.signer.address
        self.relayer = relayer
        self.calls = self.amount = 0

    def deadline(self, seconds: int = 3600) -> int:
        return max(int(time.time()), self.chain.pending_timestamp) + seconds

    def receipt(self, calls: int, amount: int, deadline: int | None = None, **changes) -> Receipt:
        fields = dict(caller=self.caller, relayer=self.relayer, model_id=self.model_id, calls=calls, amount=amount,
                      deadline=deadline or self.deadline())
        fields.update(changes)
        return Receipt(**fields)

    def body(self, receipt: Receipt, inputs=None, signer: KeySigner | None = None) -> dict:
        signature = (signer or self.signer).sign_receipt(receipt, self.chain.chain_id, self.deployment.inference_escrow)
        return {"input": inputs or IRIS_INPUT, "receipt": receipt.as_json(), "signature": "0x" + signature.hex()}

    def call(self, url: str, inputs=None, price: int = PRICE, **post) -> requests.Response:
        """Pays the next call; on success the channel moves on."""
        receipt = self.receipt(self.calls + 1, self.amount + price)
        reply = post_call(url, self.model_id, self.body(receipt, inputs), **post)
        if reply.status_code == 200:
            self.calls, self.amount = receipt.calls, receipt.amount
        return reply


def wait_known(relayer: RelayerProcess, caller: str, model_id: int, reserved: int | None = None) -> None:
    """Waits for the relayer to have read the caller's reservation (one of its rounds)."""
    def known() -> bool:
        view = requests.get(f"{relayer.url}/v1/channels/{caller}/{model_id}", timeout=5).json()
        return "reserved" in view and (reserved is None or view["reserved"] == str(reserved))

    wait_until(known, timeout=30, what=f"the relayer to see {caller}'s reservation")


def post_call(url: str, model_id: int, body, **kwargs) -> requests.Response:
    if isinstance(body, (bytes, str)):
        return requests.post(f"{url}/v1/models/{model_id}/infer", data=body, timeout=30, **kwargs)
    return requests.post(f"{url}/v1/models/{model_id}/infer", json=body, timeout=30, **kwargs)


def parts(amount: int) -> tuple[int, int, int]:
    """(treasury, relayer, payees) by the rounding rule, with the test deployment's 500/1000 bps."""
    protocol, relayer = amount * 500 // 10_000, amount * 1_000 // 10_000
    return protocol, relayer, amount - protocol - relayer


def metrics(relayer: RelayerProcess) -> str:
    return requests.get(f"{relayer.url}/metrics", timeout=5).text


# ---------------------------------------------------------------- answers


def test_a_fast_call_is_answered_with_an_attestation_that_verifies(iris, caller_hub, active_relayer, deployment,
                                                                  chain):
    relayer, model_id = iris(*QUIET)
    channel = Channel(chain, deployment, active_relayer.address, model_id)
    receipt = channel.receipt(1, PRICE)

    reply = post_call(relayer.url, model_id, channel.body(receipt))

    assert reply.status_code == 200, reply.text
    answer = reply.json()
    direct = _run_directly(IRIS, IRIS_INPUT)
    assert answer["output"]["label"] == direct["label"].tolist()
    for served, bare in zip(answer["output"]["probabilities"], direct["probabilities"]):
        assert {int(k): np.float32(v) for k, v in served.items()} == {k: np.float32(v) for k, v in bare.items()}
    output_hash = keccak(codec.encode_output(answer["output"]))
    assert answer["outputHash"] == "0x" + output_hash.hex()
    assert (answer["modelId"], answer["version"]) == (model_id, 1)
    request_id = int.from_bytes(eip712_digest(receipt, chain.chain_id, deployment.inference_escrow), "big")
    att = Attestation.from_json(answer["attestation"])
    assert att == Attestation(request_id, model_id, 1, keccak(codec.encode_output(IRIS_INPUT)), output_hash)
    digest = eip712_digest(att, chain.chain_id, deployment.inference_escrow)
    assert recover_digest_signer(digest, bytes.fromhex(answer["signature"][2:])) == active_relayer.address
    assert answer["channel"] == {"calls": "1", "amount": str(PRICE), "settledCalls": "0", "settledAmount": "0"}

    view = requests.get(f"{relayer.url}/v1/channels/{channel.caller}/{model_id}", timeout=5).json()
    assert view == {"caller": channel.caller.lower(), "relayer": active_relayer.address.lower(), "modelId": model_id,
                    "calls": "1", "amount": str(PRICE), "settledCalls": "0", "settledAmount": "0",
                    "price": str(PRICE), "receiptPrice": str(PRICE),
                    "reserved": str(RESERVED), "releasing": "0", "available": str(RESERVED - PRICE),
                    # the caller's own signature of the totals, so a resuming client can check them
                    "deadline": receipt.deadline, "signature": channel.body(receipt)["signature"]}
    assert "modelhub_fast_calls_accepted_total 1.0" in metrics(relayer)
    assert relayer.health()["fast"]["fastSigning"] is True


def test_a_channel_never_used_reads_as_zeros(iris, active_relayer, stranger):
    relayer, model_id = iris(*QUIET)
    view = requests.get(f"{relayer.url}/v1/channels/{stranger.address}/{model_id}", timeout=5).json()
    assert (view["calls"], view["amount"], view["settledCalls"], view["settledAmount"]) == ("0", "0", "0", "0")


# ---------------------------------------------------------------- refusals


def test_each_refusal_has_its_status_and_code_and_charges_nothing(iris, caller_hub, active_relayer, deployment,
                                                                 chain, uploader_hub, stranger, second_relayer,
                                                                 tmp_path):
    relayer, model_id = iris(*QUIET)
    url = relayer.url
    channel = Channel(chain, deployment, active_relayer.address, model_id)

    def refused(reply: requests.Response, status: int, code: str) -> dict:
        assert reply.status_code == status, reply.text
        body = reply.json()
        assert body["code"] == code and body["error"], body
        return body

    refused(post_call(url, model_id, b"{not json"), 400, "bad_request")
    refused(post_call(url, model_id, {"input": IRIS_INPUT}), 400, "bad_request")
    body = channel.body(channel.receipt(1, PRICE))
    body["signature"] = "0xzz"
    refused(post_call(url, model_id, body), 400, "bad_request")
    refused(post_call(url, model_id, channel.body(channel.receipt(1, PRICE, relayer=second_relayer.address))),
            400, "wrong_channel")
    refused(post_call(url, model_id + 1, channel.body(channel.receipt(1, PRICE))), 400, "wrong_channel")
    soon = refused(post_call(url, model_id, channel.body(channel.receipt(1, PRICE, deadline=channel.deadline(5)))),
                   400, "deadline_too_soon")
    assert soon["minDeadline"] > channel.deadline(5)
    far = refused(post_call(url, model_id, channel.body(channel.receipt(1, PRICE, deadline=channel.deadline(10**6)))),
                  400, "deadline_too_far")
    assert far["maxDeadline"] < channel.deadline(10**6)
    forged = channel.body(channel.receipt(1, PRICE), signer=KeySigner(STRANGER_KEY))
    refused(post_call(url, model_id, forged), 401, "invalid_signature")

    # A funded caller that reserved nothing for this relayer.
    stranger_hub = Hub(deployment, stranger)
    stranger_hub.faucet(TOKEN)
    stranger_hub.deposit(TOKEN)
    not_reserved = Channel(chain, deployment, active_relayer.address, model_id, key=STRANGER_KEY)
    body = refused(not_reserved.call(url), 402, "no_reservation")
    assert "reserve" in body["error"]

    unknown = Channel(chain, deployment, active_relayer.address, 999)
    refused(unknown.call(url), 404, "unknown_model")
    inactive_id = upload_registered(uploader_hub, url, _other_model_file(tmp_path, "off"), "iris-off", PRICE)
    uploader_hub.set_active(inactive_id, False)
    refused(Channel(chain, deployment, active_relayer.address, inactive_id).call(url), 409, "model_inactive")
    missing_id = uploader_hub.upload_model(_other_model_file(tmp_path), "iris-nowhere", PRICE).model_id  # not uploaded
    missing = Channel(chain, deployment, active_relayer.address, missing_id)
    wait_until(lambda: missing.call(url).status_code != 404, what="the relayer to see the new model")  # one round
    refused(missing.call(url), 503, "model_unavailable")

    gap = refused(post_call(url, model_id, channel.body(channel.receipt(2, 2 * PRICE))), 409, "out_of_order")
    assert gap["channel"]["calls"] == "0"
    cheap = refused(post_call(url, model_id, channel.body(channel.receipt(1, PRICE - 1))), 409, "wrong_amount")
    assert (cheap["price"], cheap["receiptPrice"]) == (str(PRICE), str(PRICE))
    refused(post_call(url, model_id, channel.body(channel.receipt(1, PRICE + 1))), 409, "wrong_amount")
    refused(channel.call(url, inputs={"X": [[5.1, 3.5, 1.4]]}), 422, "bad_input")

    # Nothing above was kept: the first call of the channel still goes through, once.
    first = channel.receipt(1, PRICE)
    assert post_call(url, model_id, channel.body(first)).status_code == 200
    replay = refused(post_call(url, model_id, channel.body(first)), 409, "out_of_order")
    assert replay["channel"] == {"calls": "1", "amount": str(PRICE), "settledCalls": "0", "settledAmount": "0"}
    older = refused(post_call(url, model_id, channel.body(channel.receipt(1, PRICE))), 409, "out_of_order")
    assert older["channel"]["calls"] == "1"

    text = metrics(relayer)
    for code in ("bad_request", "wrong_channel", "deadline_too_soon", "deadline_too_far", "invalid_signature",
                 "no_reservation",
                 "unknown_model", "model_inactive", "model_unavailable", "out_of_order", "wrong_amount", "bad_input"):
        assert f'modelhub_fast_calls_refused_total{{code="{code}"}}' in text, code
    assert "modelhub_fast_calls_accepted_total 1.0" in text


def test_two_receipts_with_the_same_calls_are_never_both_accepted(iris, caller_hub, active_relayer, deployment, chain):
    relayer, model_id = iris(*QUIET)
    channel = Channel(chain, deployment, active_relayer.address, model_id)
    # Eight different receipts for call 1 (different deadlines), sent at once.
    bodies = [channel.body(channel.receipt(1, PRICE, deadline=channel.deadline(3600 + i))) for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda body: post_call(relayer.url, model_id, body), bodies))
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == [200] + [409] * 7, [reply.text for reply in replies]
    assert all(reply.json()["code"] == "out_of_order" for reply in replies if reply.status_code == 409)


def test_a_call_the_reservation_does_not_cover_is_refused_with_402(iris, deployment, chain, active_relayer, stranger):
    relayer, model_id = iris(*QUIET)
    hub = Hub(deployment, stranger)
    hub.faucet(TOKEN)
    hub.deposit(TOKEN)
    hub.reserve(active_relayer, 2 * PRICE)  # two calls' worth; the rest of its credit is free, not for receipts
    channel = Channel(chain, deployment, active_relayer.address, model_id, key=STRANGER_KEY)
    wait_known(relayer, channel.caller, model_id)

    assert channel.call(relayer.url).status_code == 200
    assert channel.call(relayer.url).status_code == 200
    reply = channel.call(relayer.url)  # unsettled receipts already hold all its credit

    assert reply.status_code == 402, reply.text
    assert reply.json()["code"] == "insufficient_credit"
    assert (reply.json()["available"], reply.json()["needed"]) == ("0", str(PRICE))


def test_an_announced_release_is_not_counted_as_cover(iris, caller_hub, deployment, chain, active_relayer):
    relayer, model_id = iris(*QUIET)
    channel = Channel(chain, deployment, active_relayer.address, model_id)
    assert channel.call(relayer.url).status_code == 200

    caller_hub.announce_release(active_relayer, RESERVED)  # all of it
    # Calls go through until the relayer sees the announcement (one round), then none does.
    [reply] = wait_until(lambda: (r := channel.call(relayer.url)).status_code == 402 and [r], timeout=30,
                         what="the relayer to see the announced release")
    assert reply.json()["code"] == "no_reservation"


# ---------------------------------------------------------------- settlement


def test_receipts_are_settled_when_a_channel_reaches_the_threshold(iris, caller_hub, deployment, chain, escrow,
                                                                   active_relayer, uploader, treasury):
    relayer, model_id = iris("--settle-threshold", str(3 * PRICE), "--settle-interval", "3600")
    channel = Channel(chain, deployment, active_relayer.address, model_id)
    credit = caller_hub.balance()
    reserved = caller_hub.reservation(relayer=active_relayer).reserved
    for _ in range(2):
        assert channel.call(relayer.url).status_code == 200
    time.sleep(2)  # several rounds: below the threshold nothing is settled
    assert caller_hub.channel(channel.caller, active_relayer, model_id) == (0, 0)

    assert channel.call(relayer.url).status_code == 200
    wait_until(lambda: caller_hub.channel(channel.caller, active_relayer, model_id) == (3, 3 * PRICE),
               what="the channel to settle on chain")

    protocol, relayer_part, payees = parts(3 * PRICE)
    assert escrow.earningsOf(uploader) == payees
    assert escrow.earningsOf(active_relayer) == relayer_part
    assert escrow.earningsOf(treasury) == protocol
    assert caller_hub.balance() == credit  # free credit is not touched: the reservation paid
    assert caller_hub.reservation(relayer=active_relayer).reserved == reserved - 3 * PRICE
    stats = caller_hub.model_stats(model_id)
    assert (stats.calls, stats.revenue) == (3, 3 * PRICE)
    wait_until(lambda: "modelhub_fast_calls_settled_total 3.0" in metrics(relayer), what="the settled metric")
    view = requests.get(f"{relayer.url}/v1/channels/{channel.caller}/{model_id}", timeout=5).json()
    assert (view["settledCalls"], view["settledAmount"]) == ("3", str(3 * PRICE))


def test_receipts_are_settled_every_interval(iris, caller_hub, deployment, chain, escrow, active_relayer, uploader,
                                             treasury, stranger):
    relayer, model_id = iris("--settle-threshold", str(10**30), "--settle-interval", "1")
    second = Hub(deployment, stranger)
    second.faucet(TOKEN)
    second.deposit(TOKEN)
    second.reserve(active_relayer, TOKEN)
    channels = [Channel(chain, deployment, active_relayer.address, model_id),
                Channel(chain, deployment, active_relayer.address, model_id, key=STRANGER_KEY)]
    wait_known(relayer, channels[1].caller, model_id)
    for count, channel in zip((2, 3), channels):
        for _ in range(count):
            assert channel.call(relayer.url).status_code == 200

    for count, channel in zip((2, 3), channels):
        wait_until(lambda: caller_hub.channel(channel.caller, active_relayer, model_id) == (count, count * PRICE),
                   what="each channel to settle on the timer")
    protocol, relayer_part, payees = parts(2 * PRICE)
    protocol3, relayer_part3, payees3 = parts(3 * PRICE)
    assert escrow.earningsOf(uploader) == payees + payees3
    assert escrow.earningsOf(active_relayer) == relayer_part + relayer_part3
    assert escrow.earningsOf(treasury) == protocol + protocol3
    stats = caller_hub.model_stats(model_id)
    assert (stats.calls, stats.revenue) == (5, 5 * PRICE)


def test_an_announced_release_gets_the_callers_receipts_settled_before_it_can_be_made(
        iris, caller_hub, deployment, chain, active_relayer):
    relayer, model_id = iris(*QUIET)
    channel = Channel(chain, deployment, active_relayer.address, model_id)
    for _ in range(2):
        assert channel.call(relayer.url).status_code == 200

    notice = caller_hub.announce_release(active_relayer, TOKEN)

    wait_until(lambda: caller_hub.channel(channel.caller, active_relayer, model_id) == (2, 2 * PRICE),
               timeout=30, what="the caller's channel to settle after its announcement")
    assert chain.blocks.head.timestamp < notice.release_at  # long before the release can be made


def test_a_relayer_killed_after_answering_settles_every_answered_call_after_restart(
        iris, caller_hub, deployment, chain, escrow, active_relayer, uploader, start_relayer):
    relayer, model_id = iris(*QUIET)
    channel = Channel(chain, deployment, active_relayer.address, model_id)
    calls = 25
    for _ in range(calls):
        assert channel.call(relayer.url).status_code == 200

    relayer.kill()  # SIGKILL right after the answers: no settlement was sent
    assert caller_hub.channel(channel.caller, active_relayer, model_id) == (0, 0)

    start_relayer(*QUIET)  # the same store
    wait_until(lambda: caller_hub.channel(channel.caller, active_relayer, model_id) == (calls, calls * PRICE),
               what="the recovered channel to settle")
    _, relayer_part, payees = parts(calls * PRICE)
    assert escrow.earningsOf(uploader) == payees
    assert escrow.earningsOf(active_relayer) == relayer_part
    stats = caller_hub.model_stats(model_id)
    assert (stats.calls, stats.revenue) == (calls, calls * PRICE)


# ---------------------------------------------------------------- helpers


def _run_directly(model: Path, inputs: dict) -> dict:
    import onnxruntime as ort

    session = ort.InferenceSession(model.read_bytes(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {"X": np.asarray(inputs["X"], dtype=np.float32)})
    return dict(zip(names, values))


def _other_model_file(folder: Path, tag: str = "other") -> Path:
    """A valid ONNX file other than iris (iris with another producer name)."""
    import onnx

    path = folder / f"iris-{tag}.onnx"
    model = onnx.load(str(IRIS))
    model.producer_name = f"modelhub-tests-{tag}"
    onnx.save(model, str(path))
    return path
