"""The attacks of issue 10, performed from the caller's side through the SDK against the real
contracts on anvil: each one is tried the way an adversary would, and fails without anybody who
followed the rules losing anything."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from modelhub import errors
from modelhub.contracts import ReceiptSkipReason, RequestStatus, SkipReason
from modelhub.hub import Hub
from modelhub.typed_data import Attestation, KeySigner, Receipt

from tests.support.sdk import IRIS, IRIS_INPUT, PRICE

DEADLINE = 2**40
OUTPUT = b'{"label":[0]}'


def sign(account_or_key, receipt: Receipt, hub: Hub) -> bytes:
    key = getattr(account_or_key, "private_key", account_or_key)
    return KeySigner(key).sign_receipt(receipt, hub.deployment.chain_id, hub.deployment.inference_escrow)


def attest(call, output: bytes = OUTPUT) -> Attestation:
    return Attestation(call.id, call.model_id, call.version, call.input_hash, keccak(output))


@pytest.fixture
def second_bonded(hub_for, second_relayer) -> Hub:
    hub = hub_for(second_relayer)
    hub.faucet(hub.min_bond)
    hub.relayer_register("http://127.0.0.1:8701", hub.min_bond)
    return hub


# ---------------------------------------------------------------- 1: the delay bypassed through earnings


def test_reserved_credit_cannot_be_withdrawn_before_the_release_delay(funded_caller, bonded_relayer, chain):
    relayer = bonded_relayer.address
    funded_caller.reserve(relayer, 10 * PRICE)  # the relayer serves against this
    with pytest.raises(errors.InsufficientCreditError, match="reserved for relayers"):
        funded_caller.withdraw(PRICE)
    escrow = funded_caller.contracts.escrow
    with pytest.raises(errors.InsufficientCreditError):
        funded_caller._send(escrow.withdraw, PRICE)  # past the SDK's own check: the escrow refuses
    held = funded_caller.announce_release(relayer, 10 * PRICE)
    chain.mine(timestamp=held.release_at - 2)
    with pytest.raises(errors.ReleaseNotReadyError):
        funded_caller._send(escrow.release, relayer)
    assert funded_caller.reservation(relayer=relayer).reserved == 10 * PRICE


def test_a_caller_cannot_pay_its_own_model_out_of_a_reservation_for_another_relayer(
        funded_caller, bonded_relayer, uploader_hub, caller, store):
    """The caller registers a model of its own, bonds itself as a relayer, signs itself a
    receipt for its whole reservation and submits it: the honest relayer's reservation is out
    of reach, and nothing reaches the caller's earnings."""
    honest = bonded_relayer.address
    funded_caller.reserve(honest, 10 * PRICE)
    own_model = funded_caller.upload_model(IRIS, "mine", 1, store=store).model_id
    funded_caller.faucet(funded_caller.min_bond)
    funded_caller.relayer_register("http://127.0.0.1:8702", funded_caller.min_bond)

    to_honest = Receipt(caller.address, honest, own_model, 1, 10 * PRICE, DEADLINE)
    to_itself = Receipt(caller.address, caller.address, own_model, 1, 10 * PRICE, DEADLINE)
    outcomes = funded_caller.settle_receipts([(to_honest, sign(caller, to_honest, funded_caller)),
                                              (to_itself, sign(caller, to_itself, funded_caller))])
    assert [o.skip_reason for o in outcomes] == [ReceiptSkipReason.NOT_SUBMITTER,
                                                 ReceiptSkipReason.INSUFFICIENT_CREDIT]
    assert funded_caller.earnings() == 0
    assert funded_caller.reservation(relayer=honest).reserved == 10 * PRICE
    with pytest.raises(errors.NothingToWithdrawError):
        funded_caller.withdraw_earnings()


def test_a_request_to_its_own_model_cannot_spend_reserved_credit(funded_caller, bonded_relayer, store):
    funded_caller.reserve(bonded_relayer.address, 10 * PRICE)
    own_model = funded_caller.upload_model(IRIS, "mine", 1, store=store).model_id
    with pytest.raises(errors.InsufficientCreditError, match="deposit 1 more"):
        funded_caller.request(own_model, IRIS_INPUT)
    escrow = funded_caller.contracts.escrow
    with pytest.raises(errors.InsufficientCreditError):
        funded_caller._send(escrow.requestInference, own_model, 1, b'{"X":[[1,2,3,4]]}', 1)


# ---------------------------------------------------------------- 2: one credit spent at several relayers


def test_one_reservation_cannot_be_spent_at_two_relayers(
        funded_caller, bonded_relayer, second_bonded, iris, caller):
    funded_caller.reserve(bonded_relayer.address, 5 * PRICE)
    # Two relayers served calls against the same credit; only the one reserved for is paid.
    for_first = Receipt(caller.address, bonded_relayer.address, iris.model_id, 5, 5 * PRICE, DEADLINE)
    for_second = Receipt(caller.address, second_bonded.address, iris.model_id, 5, 5 * PRICE, DEADLINE)
    signed = [(r, sign(caller, r, funded_caller)) for r in (for_first, for_second)]

    # The second relayer can neither take the first one's receipt nor settle its own.
    assert [o.skip_reason for o in second_bonded.settle_receipts(signed)] == [
        ReceiptSkipReason.NOT_SUBMITTER, ReceiptSkipReason.INSUFFICIENT_CREDIT]
    assert [o.paid for o in bonded_relayer.settle_receipts(signed[:1])] == [5 * PRICE]
    assert funded_caller.reservation(relayer=bonded_relayer.address).reserved == 0
    # From the chain alone, the second relayer could tell it had nothing to serve against.
    assert funded_caller.reservation(relayer=second_bonded.address).reserved == 0


def test_a_release_announcement_shows_at_once_in_what_the_relayer_can_count_on(funded_caller, bonded_relayer):
    relayer = bonded_relayer.address
    funded_caller.reserve(relayer, 5 * PRICE)
    funded_caller.announce_release(relayer, 2 * PRICE)
    held = bonded_relayer.reservation(funded_caller.address, relayer)
    assert (held.reserved, held.releasing, held.spendable) == (5 * PRICE, 2 * PRICE, 3 * PRICE)


# ---------------------------------------------------------------- 3: contract wallets


def test_a_contract_wallet_pays_receipts_only_through_a_registered_signer_key(
        wallet_hub, bonded_relayer, iris, caller):
    relayer = bonded_relayer.address
    wallet_hub.reserve(relayer, 10 * PRICE)
    first = Receipt(wallet_hub.address, relayer, iris.model_id, 1, PRICE, DEADLINE)
    # The owner's key signed, and the wallet's isValidSignature would say yes: the escrow no
    # longer asks it, so its answer cannot change between a relayer's check and settlement.
    assert [o.skip_reason for o in bonded_relayer.settle_receipts([(first, sign(caller, first, wallet_hub))])] == [
        ReceiptSkipReason.INVALID_SIGNATURE]

    key = wallet_hub.set_receipt_signer(caller)  # the first key applies at once
    assert key.signer == caller.address
    assert [o.paid for o in bonded_relayer.settle_receipts([(first, sign(caller, first, wallet_hub))])] == [PRICE]
    assert wallet_hub.reservation(relayer=relayer).reserved == 9 * PRICE


def test_a_contract_wallet_cannot_disown_receipts_by_switching_its_key(
        wallet_hub, bonded_relayer, iris, caller, stranger, chain):
    relayer = bonded_relayer.address
    wallet_hub.reserve(relayer, 10 * PRICE)
    wallet_hub.set_receipt_signer(caller)
    served = Receipt(wallet_hub.address, relayer, iris.model_id, 3, 3 * PRICE, DEADLINE)
    signature = sign(caller, served, wallet_hub)  # the relayer served 3 calls against this

    key = wallet_hub.set_receipt_signer(stranger)  # the wallet tries to disown the old key
    assert (key.signer, key.next_signer) == (caller.address, stranger.address)
    later = Receipt(wallet_hub.address, relayer, iris.model_id, 4, 4 * PRICE, DEADLINE)
    outcomes = bonded_relayer.settle_receipts([(later, sign(stranger, later, wallet_hub)),
                                               (served, signature)])
    assert [(o.skip_reason, o.paid) for o in outcomes] == [
        (ReceiptSkipReason.INVALID_SIGNATURE, 0),  # the new key is not in force yet
        (ReceiptSkipReason.NONE, 3 * PRICE)]  # the old key's receipt still settles
    # A release takes just as long, so the relayer settles before the credit can leave.
    assert key.next_at - chain.blocks.head.timestamp <= wallet_hub.withdrawal_delay


def test_a_contract_wallet_hub_drives_the_escrow_through_the_wallet(wallet_hub, iris, bonded_relayer):
    call = wallet_hub.request(iris.model_id, IRIS_INPUT, relayer=bonded_relayer.address)
    assert call.caller == wallet_hub.address and call.id >> 96 == int(wallet_hub.address, 16)
    assert wallet_hub.balance() == 9 * PRICE
    with pytest.raises(errors.InsufficientCreditError):
        wallet_hub._send(wallet_hub.contracts.escrow.withdraw, 100 * PRICE)  # decoded through CallFailed


# ---------------------------------------------------------------- 4: outputs taken for free through reject


def test_a_caller_with_a_relayer_of_its_own_cannot_reject_a_call_another_relayer_served(
        funded_caller, bonded_relayer, iris):
    """An open call: the honest relayer answered; the caller, bonded as a relayer, rejects it
    for a refund. Nobody may reject an open call, so the honest settlement goes through."""
    funded_caller.faucet(funded_caller.min_bond)
    funded_caller.relayer_register("http://127.0.0.1:8702", funded_caller.min_bond)
    call = funded_caller.request(iris.model_id, IRIS_INPUT)
    with pytest.raises(errors.NotDesignatedRelayerError):
        funded_caller.reject(call.id, errors.RejectReason.INPUT_MISMATCH)
    assert bonded_relayer.fulfill(attest(call), bonded_relayer.sign_attestation(attest(call))).settled
    assert funded_caller.get_request(call.id).status is RequestStatus.FULFILLED
    assert funded_caller.balance() == 9 * PRICE


def test_a_designated_call_is_settled_and_rejected_only_by_its_relayer(
        funded_caller, bonded_relayer, second_bonded, iris):
    call = funded_caller.request(iris.model_id, IRIS_INPUT, relayer=bonded_relayer.address)
    with pytest.raises(errors.NotDesignatedRelayerError):
        second_bonded.reject(call.id, errors.RejectReason.OTHER)
    other = [(attest(call), second_bonded.sign_attestation(attest(call)))]
    assert [o.skip_reason for o in second_bonded.fulfill_batch(other)] == [SkipReason.NOT_DESIGNATED]
    with pytest.raises(errors.NotDesignatedRelayerError):
        second_bonded.fulfill(*other[0])
    assert bonded_relayer.fulfill(attest(call), bonded_relayer.sign_attestation(attest(call))).settled


# ---------------------------------------------------------------- 10: version front-running


def test_an_owner_publishing_a_version_just_before_a_request_cannot_change_what_runs(
        funded_caller, uploader_hub, iris, store, monkeypatch):
    from tests.support.sdk import DIABETES

    real_send = funded_caller._send

    def front_run(method, *args):
        if method.abis[0].name == "requestInference":  # the owner's transaction lands first
            uploader_hub.publish_version(iris.model_id, DIABETES, store=store)
        return real_send(method, *args)

    monkeypatch.setattr(funded_caller, "_send", front_run)
    call = funded_caller.request(iris.model_id, IRIS_INPUT)
    assert uploader_hub.get_model(iris.model_id).latest_version == 2
    assert call.version == 1 == funded_caller.get_request(call.id).version
