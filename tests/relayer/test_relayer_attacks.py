"""Issue 10's attacks on the relayer, each performed against a real `modelhub relayer run`
process on the test chain and shown to fail, with nobody who followed the rules losing anything:

* a caller drains its reservation through a model (and a relayer) of its own;
* one reservation spent at two relayers;
* a contract wallet that answers ERC-1271 "valid" to the relayer and could answer otherwise at
  settlement (the relayer no longer asks: wallets sign with a registered key);
* callers that reserved nothing make the relayer work (they cost it no chain read);
* a relayer of the caller's reads an answered output and rejects the paid request;
* an upload of a file no model registered (disk fill);
* zero-value channels settled at the relayer's expense;
* receipts paid at a price notice's floor, settled after the notice ended.
"""

from __future__ import annotations

import os
import time

import requests
from eth_utils import keccak

from modelhub.contracts import ReceiptSkipReason, RequestStatus
from modelhub.hub import Hub
from modelhub.typed_data import KeySigner, Receipt
from modelhub.typed_data import digest as eip712_digest

from tests.support.relayers import upload_registered, wait_until
from tests.relayer.test_fast_calls import (  # noqa: F401 -- fixtures shared with the fast-call tests
    CALLER_KEY, IRIS, PRICE, QUIET, RESERVED, TOKEN, Channel, caller_hub, iris, metrics, parts, post_call,
    uploader_hub, wait_known,
)

SECOND_RELAYER = "TEST::7"
NOT_DESIGNATED = keccak(b"InferenceEscrow_NotDesignatedRelayer(uint256,address)")[:4]


def _health_fast(relayer) -> dict:
    return relayer.health()["fast"]


def test_a_caller_cannot_drain_its_reservation_through_its_own_model_or_relayer(
        iris, caller_hub, deployment, chain, escrow, active_relayer, second_relayer, bond, uploader):
    relayer, model_id = iris(*QUIET)
    channel = Channel(chain, deployment, active_relayer.address, model_id)
    for _ in range(3):
        assert channel.call(relayer.url).status_code == 200  # served off chain, not settled yet

    # The caller registers a model of its own (1 base unit a call) and pays it its whole
    # reservation with a receipt of its own making, naming the relayer that served it...
    own_model = caller_hub.upload_model(IRIS, "mine", 1).model_id
    whole = caller_hub.reservation(relayer=active_relayer).reserved
    signer = KeySigner(CALLER_KEY)
    greedy = Receipt(channel.caller, active_relayer.address, own_model, 1, whole, channel.deadline())
    signature = signer.sign_receipt(greedy, chain.chain_id, deployment.inference_escrow)
    [outcome] = caller_hub.settle_receipts([(greedy, signature)])
    assert not outcome.settled and outcome.skip_reason is ReceiptSkipReason.NOT_SUBMITTER

    # ...or a relayer of its own: that relayer holds no reservation of the caller.
    bond(second_relayer)
    via_own = Receipt(channel.caller, second_relayer.address, own_model, 1, whole, channel.deadline())
    signature = signer.sign_receipt(via_own, chain.chain_id, deployment.inference_escrow)
    [outcome] = Hub(deployment, second_relayer).settle_receipts([(via_own, signature)])
    assert not outcome.settled and outcome.skip_reason is ReceiptSkipReason.INSUFFICIENT_CREDIT

    assert caller_hub.reservation(relayer=active_relayer).reserved == whole  # untouched
    assert escrow.earningsOf(channel.caller) == 0 and escrow.earningsOf(second_relayer) == 0

    # The relayer that served the calls is paid for each of them (its release announcement
    # makes it settle at once).
    caller_hub.announce_release(active_relayer, whole)
    wait_until(lambda: caller_hub.channel(channel.caller, active_relayer, model_id) == (3, 3 * PRICE),
               what="the honest relayer's channel to settle")
    _, relayer_part, payees = parts(3 * PRICE)
    assert escrow.earningsOf(active_relayer) == relayer_part
    assert escrow.earningsOf(uploader) == payees


def test_one_reservation_cannot_pay_two_relayers(start_relayer, iris, caller_hub, deployment, chain, escrow,
                                                 active_relayer, second_relayer, bond):
    bond(second_relayer)
    first, model_id = iris(*QUIET)
    second = start_relayer(*QUIET, "--fetch-from", first.url, account=SECOND_RELAYER, name="b")
    at_first = Channel(chain, deployment, active_relayer.address, model_id)
    at_second = Channel(chain, deployment, second_relayer.address, model_id)
    assert at_first.call(first.url).status_code == 200

    # Credit reserved for the first relayer is worth nothing at the second.
    refused = at_second.call(second.url)
    assert refused.status_code == 402 and refused.json()["code"] == "no_reservation", refused.text

    # A reservation for the second relayer: it serves up to that, and no further.
    caller_hub.reserve(second_relayer, 2 * PRICE)
    wait_known(second, at_second.caller, model_id, reserved=2 * PRICE)
    # It lacks the model file: that call is refused (not charged) and the file fetched meanwhile.
    missing = at_second.call(second.url)
    assert missing.status_code == 503 and missing.json()["code"] == "model_unavailable", missing.text
    wait_until(lambda: list((second.store / "artifacts").glob("bafk*")), what="the second relayer to fetch the file")
    assert at_second.call(second.url).status_code == 200
    assert at_second.call(second.url).status_code == 200
    short = at_second.call(second.url)
    assert short.status_code == 402 and short.json()["code"] == "insufficient_credit", short.text
    assert at_first.call(first.url).status_code == 200  # the first relayer's reservation is its own

    # Both stop, and each settles what it served out of its own reservation (shutdown settlement).
    credit = caller_hub.balance()
    assert first.terminate() == 0 and second.terminate() == 0
    assert caller_hub.channel(at_first.caller, active_relayer, model_id) == (2, 2 * PRICE)
    assert caller_hub.channel(at_second.caller, second_relayer, model_id) == (2, 2 * PRICE)
    assert caller_hub.reservation(relayer=active_relayer).reserved == RESERVED - 2 * PRICE
    assert caller_hub.reservation(relayer=second_relayer).reserved == 0
    assert caller_hub.balance() == credit
    _, relayer_part, _ = parts(2 * PRICE)
    assert escrow.earningsOf(active_relayer) == escrow.earningsOf(second_relayer) == relayer_part


def test_a_contract_wallet_is_served_only_through_a_registered_signer_key(
        iris, project, deployment, chain, caller, token, active_relayer, escrow):
    relayer, model_id = iris(*QUIET)
    wallet = project.TestWallet.deploy(caller.address, sender=caller)
    token.mint(caller, TOKEN, sender=caller)
    token.approve(escrow, TOKEN, sender=caller)
    escrow.depositFor(wallet.address, TOKEN, sender=caller)
    wallet.execute(escrow.address, escrow.reserve.encode_input(active_relayer.address, TOKEN), sender=caller)
    channel = Channel(chain, deployment, active_relayer.address, model_id, key=CALLER_KEY, caller=wallet.address)
    wait_known(relayer, wallet.address, model_id)
    reads = _health_fast(relayer)["hotPathChainReads"]

    # The wallet would say "valid" (ERC-1271) -- and could say otherwise at settlement: the
    # relayer does not ask it. Without a registered signer key the owner's signature is not the wallet's.
    receipt = channel.receipt(1, PRICE)
    body = channel.body(receipt)
    digest = eip712_digest(receipt, chain.chain_id, deployment.inference_escrow)
    assert bytes(wallet.isValidSignature(digest, bytes.fromhex(body["signature"][2:]))) == bytes.fromhex("1626ba7e")
    reply = post_call(relayer.url, model_id, body)
    assert reply.status_code == 401 and reply.json()["code"] == "invalid_signature", reply.text
    assert "setReceiptSigner" in reply.json()["error"]
    assert _health_fast(relayer)["hotPathChainReads"] == reads  # no eth_call to the wallet

    # The wallet registers its owner's key, which it cannot take back before the withdrawal delay.
    wallet.execute(escrow.address, escrow.setReceiptSigner.encode_input(caller.address), sender=caller)
    wait_until(lambda: channel.call(relayer.url).status_code == 200, timeout=30,
               what="the relayer to see the wallet's receipt signer")
    assert relayer.terminate() == 0  # settles at shutdown
    assert escrow.channel(wallet.address, active_relayer.address, model_id) == (1, PRICE)
    _, relayer_part, _ = parts(PRICE)
    assert escrow.earningsOf(active_relayer) == relayer_part


def test_callers_without_a_reservation_cost_the_relayer_no_chain_read(iris, deployment, chain, active_relayer):
    relayer, model_id = iris(*QUIET)
    before = _health_fast(relayer)
    for _ in range(40):  # fresh identities, each signing a well-formed receipt of its own
        stranger = Channel(chain, deployment, active_relayer.address, model_id, key="0x" + os.urandom(32).hex())
        reply = stranger.call(relayer.url)
        assert reply.status_code == 402 and reply.json()["code"] == "no_reservation", reply.text
    after = _health_fast(relayer)
    assert after["hotPathChainReads"] == before["hotPathChainReads"]
    assert after["callers"] == before["callers"] == 0 and after["locks"] == 0  # nothing kept for them
    text = metrics(relayer)
    assert 'modelhub_fast_calls_refused_total{code="no_reservation"} 40.0' in text
    assert "modelhub_fast_chain_reads_total 0.0" in text


def test_an_output_is_not_published_before_it_is_paid_and_an_open_request_cannot_be_rejected(
        start_relayer, active_relayer, second_relayer, bond, uploader_hub, caller_hub, escrow, chain, caller):
    bond(second_relayer)  # the caller's own relayer
    relayer = start_relayer()
    model_id = upload_registered(uploader_hub, relayer.url, IRIS, "iris", PRICE)
    credit = caller_hub.balance()
    request_id = escrow.nextRequestId(caller)
    data = escrow.requestInference.encode_input(model_id, 0, b'{"X":[[5.1,3.5,1.4,0.2]]}', PRICE)
    provider = chain.provider
    provider.make_request("evm_setAutomine", [False])
    try:
        provider.make_request("eth_sendTransaction", [{"from": caller.address, "to": escrow.address,
                                                       "data": data.hex() if isinstance(data, str) else
                                                       "0x" + bytes(data).hex()}])
        provider.make_request("evm_mine", [])  # the request lands; the relayer's settlement will wait
        wait_until(lambda: relayer.calls().get(request_id, ("",))[0] == "answered", timeout=30,
                   what="the relayer to answer")
        # The attacker reads the answer before the settlement lands: no output.
        early = requests.get(f"{relayer.url}/v1/requests/{request_id}", timeout=30)
        assert early.status_code == 202, early.text
        assert early.json()["status"] == "answered" and early.json()["output"] is None
        assert requests.get(f"{relayer.url}/v1/requests/{request_id}/output", timeout=30).status_code == 409
        # ...and it cannot refund itself through its relayer: nobody may reject an open request.
        try:
            escrow.reject.call(request_id, 4, sender=second_relayer)
        except Exception as error:  # noqa: BLE001 -- the revert, whichever class Ape gives it
            assert "NotDesignatedRelayer" in str(error) or NOT_DESIGNATED.hex() in str(error), error
        else:
            raise AssertionError("reject of an open request did not revert")
    finally:
        provider.make_request("evm_setAutomine", [True])
        provider.make_request("evm_mine", [])

    wait_until(lambda: caller_hub.get_request(request_id).status is RequestStatus.FULFILLED, timeout=60,
               what="the relayer's settlement to land")
    paid = wait_until(lambda: (r := requests.get(f"{relayer.url}/v1/requests/{request_id}", timeout=30)).status_code
                      == 200 and r.json(), what="the relayer to record its settlement")
    assert paid["status"] == "settled", paid
    assert paid["output"] is not None  # public once paid
    assert caller_hub.balance() == credit - PRICE
    _, relayer_part, _ = parts(PRICE)
    assert escrow.earningsOf(active_relayer) == relayer_part
    assert escrow.earningsOf(second_relayer) == 0


def test_an_upload_of_a_file_no_model_registered_is_refused(start_relayer, active_relayer, uploader_hub, tmp_path):
    relayer = start_relayer()
    junk = os.urandom(2048)
    reply = requests.post(f"{relayer.url}/v1/artifacts", data=junk, timeout=10,
                          headers={"Content-Type": "application/octet-stream"})
    assert reply.status_code == 403 and reply.json()["code"] == "not_registered", reply.text
    assert not list((relayer.store / "artifacts").rglob("*")) or all(p.is_dir() for p in
                                                                       (relayer.store / "artifacts").rglob("*"))
    # Registered a moment ago: accepted at once (the relayer looks for the registration).
    model_id = upload_registered(uploader_hub, relayer.url, IRIS, "iris", PRICE)
    assert model_id >= 1
    assert 'modelhub_uploads_refused_total{reason="not_registered"} 1.0' in metrics(relayer)


def test_channels_worth_less_than_the_minimum_are_settled_only_when_forced(
        start_relayer, uploader_hub, caller_hub, deployment, chain, escrow, active_relayer):
    relayer = start_relayer("--settle-interval", "1", "--settle-threshold", str(10**30))
    free = upload_registered(uploader_hub, relayer.url, IRIS, "free iris", 0)
    channel = Channel(chain, deployment, active_relayer.address, free)
    wait_until(lambda: channel.call(relayer.url, price=1).status_code == 200, timeout=30,
               what="the relayer to see the model")
    for _ in range(2):
        # A free model's call still pays the escrow's minimum of 1 base unit.
        assert channel.call(relayer.url, price=0).json()["code"] == "wrong_amount"
        assert channel.call(relayer.url, price=1).status_code == 200
    time.sleep(4)  # several intervals: 3 base units are not worth a settlement's gas
    assert caller_hub.channel(channel.caller, active_relayer, free) == (0, 0)
    assert "modelhub_fast_settlement_batches_total 0.0" in metrics(relayer)

    caller_hub.announce_release(active_relayer, 1)  # forced: the release must not beat the receipts
    wait_until(lambda: caller_hub.channel(channel.caller, active_relayer, free) == (3, 3), timeout=30,
               what="the forced settlement")
    stats = caller_hub.model_stats(free)
    assert (stats.calls, stats.revenue) == (3, 3)  # calls counted are calls paid for


def test_receipts_paid_at_a_notices_floor_still_settle_after_the_notice_ended(
        iris, start_relayer, caller_hub, uploader_hub, deployment, chain, escrow, registry, active_relayer):
    relayer, model_id = iris(*QUIET)
    uploader_hub.set_price(model_id, 2 * PRICE)  # a rise: receipts may pay PRICE until the notice ends
    channel = Channel(chain, deployment, active_relayer.address, model_id)

    def view() -> dict:
        return requests.get(f"{relayer.url}/v1/channels/{channel.caller}/{model_id}", timeout=5).json()

    wait_until(lambda: view()["price"] == str(2 * PRICE), timeout=30, what="the relayer to see the rise")
    assert view()["receiptPrice"] == str(PRICE)
    deadline = channel.deadline(5 * 3600)
    for calls in (1, 2, 3):
        receipt = channel.receipt(calls, calls * PRICE, deadline=deadline)
        assert post_call(relayer.url, model_id, channel.body(receipt)).status_code == 200
    channel.calls, channel.amount = 3, 3 * PRICE

    relayer.kill()  # down past the end of the notice: nothing settled in time
    _, ends_at = registry.priceNotice(model_id)
    chain.mine(timestamp=ends_at + 60)
    assert escrow.channelPrice(channel.caller, active_relayer, model_id) == PRICE  # the floor still holds

    restarted = start_relayer(*QUIET)
    wait_until(lambda: caller_hub.channel(channel.caller, active_relayer, model_id) == (3, 3 * PRICE),
               what="the floor-priced channel to settle after the notice")
    assert 'modelhub_fast_receipts_skipped_total{reason="underpriced"}' not in metrics(restarted)
    # New receipts pay the new price.
    cheap = post_call(restarted.url, model_id, channel.body(channel.receipt(4, 4 * PRICE, deadline=deadline)))
    assert cheap.status_code == 409 and cheap.json()["receiptPrice"] == str(2 * PRICE), cheap.text
    assert channel.call(restarted.url, price=2 * PRICE).status_code == 200
