"""The SDK against the real contracts on a local chain: every Hub method, the mapping of the
contracts' custom errors to the SDK's exceptions, discovery, event decoding and settlement."""

from __future__ import annotations

import hashlib
import json

import pytest
from eth_utils import keccak

from modelhub import errors
from modelhub.typed_data import Attestation, recover_signer
from modelhub.contracts import RequestStatus, SkipReason, chain_errors
from modelhub.deployments import DeploymentNotFoundError, save_deployment
from modelhub.hub import Hub, encode_input
from modelhub.store import digest_to_cid

from tests.support.sdk import DIABETES, IRIS, IRIS_INPUT, PRICE

OUTPUT = b'{"label":[0]}'


def attest(call, output: bytes = OUTPUT, **changes) -> Attestation:
    """The attestation of a RequestInfo, optionally with fields changed."""
    fields = dict(request_id=call.id, model_id=call.model_id, version=call.version,
                  input_hash=call.input_hash, output_hash=keccak(output))
    return Attestation(**{**fields, **changes})


# ---------------------------------------------------------------- connecting


def test_connect_finds_the_deployment_file_of_the_connected_chain(deployment, caller, tmp_path):
    save_deployment(deployment, tmp_path)
    hub = Hub.connect(caller, folder=tmp_path)
    assert hub.deployment == deployment
    assert hub.contracts.escrow.address == deployment.inference_escrow


def test_connect_without_a_deployment_file_says_how_to_deploy(caller, tmp_path):
    with pytest.raises(DeploymentNotFoundError, match="ape run deploy"):
        Hub.connect(caller, folder=tmp_path)


def test_a_deployment_of_another_chain_is_refused(deployment, caller):
    with pytest.raises(errors.ChainMismatchError, match="chain 11155111"):
        Hub(deployment.model_copy(update={"chain_id": 11155111}), caller)


def test_a_deployment_whose_contracts_are_gone_is_called_stale(deployment, caller):
    gone = deployment.model_copy(update={"inference_escrow": "0x" + "12" * 20})
    with pytest.raises(errors.ChainMismatchError, match="stale"):
        Hub(gone, caller)


def test_a_missing_build_asks_to_run_make_compile(monkeypatch):
    from ape import project

    from modelhub import contracts

    monkeypatch.setattr(project.manifest, "contract_types", {})
    monkeypatch.setattr(contracts, "_packaged_type", lambda name: None)
    with pytest.raises(errors.ProjectNotCompiledError, match="make compile"):
        contracts.contract_type("InferenceEscrow")


def test_without_a_build_the_abis_packaged_with_modelhub_are_the_builds(monkeypatch, project):
    from modelhub import contracts

    built = {name: project.manifest.contract_types[name].abi for name in contracts.PACKAGED_CONTRACTS}
    monkeypatch.setattr(project.manifest, "contract_types", {})
    for name, abi in built.items():
        assert contracts.contract_type(name).abi == abi


def test_connect_without_a_network_says_how_to_connect(caller, monkeypatch):
    from ape import networks

    monkeypatch.setattr(networks, "active_provider", None)
    with pytest.raises(errors.ChainUnreachableError, match="no network is connected"):
        Hub.connect(caller)


def test_a_lost_connection_becomes_chain_unreachable():
    import requests

    with pytest.raises(errors.ChainUnreachableError, match="node is running"):
        with chain_errors():
            raise requests.exceptions.ConnectionError("refused")


# ---------------------------------------------------------------- uploaders


def test_upload_registers_the_file_digest_and_stores_it_under_its_cid(uploader_hub, store, uploader):
    data = IRIS.read_bytes()
    model_id, digest, cid = uploader_hub.upload_model(IRIS, "iris", PRICE, "ipfs://card", store=store)
    assert digest == hashlib.sha256(data).digest()
    assert cid == digest_to_cid(digest)
    assert store.get(cid) == data
    model = uploader_hub.get_model(model_id)
    assert (model.owner, model.price, model.name, model.metadata_uri) == (uploader.address, PRICE, "iris", "ipfs://card")
    assert model.versions[0][:3] == (1, digest, cid)


def test_upload_posts_the_file_to_a_relayer_and_checks_its_answer(uploader_hub, artifact_server):
    upload = uploader_hub.upload_model(IRIS, "iris", PRICE, relayer_url=artifact_server["url"])
    assert artifact_server["store"].get(upload.cid) == IRIS.read_bytes()


def test_a_relayer_answering_another_digest_is_not_trusted(uploader_hub, artifact_server):
    artifact_server["lie"] = True
    # Relayers store only registered files, so the model is registered first; the error says so.
    with pytest.raises(errors.ArtifactUploadError, match="model 1 is registered, but .*do not use that relayer"):
        uploader_hub.upload_model(IRIS, "iris", PRICE, relayer_url=artifact_server["url"])


def test_an_unreachable_relayer_fails_the_upload_before_registering(uploader_hub):
    with pytest.raises(errors.ArtifactUploadError, match="did not store"):
        uploader_hub.upload_model(IRIS, "iris", PRICE, relayer_url="http://127.0.0.1:9")
    assert uploader_hub.list_models() == []


def test_a_file_that_is_not_onnx_is_refused_before_registering(uploader_hub, tmp_path):
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not a model at all")
    with pytest.raises(errors.ModelFileError, match="not an ONNX model"):
        uploader_hub.upload_model(fake, "fake", PRICE)
    with pytest.raises(errors.ModelFileError, match="cannot read"):
        uploader_hub.upload_model(tmp_path / "missing.onnx", "missing", PRICE)
    assert uploader_hub.list_models() == []


CARD = b'{"name": "iris", "tolerance": {"probabilities": {"atol": 0.001, "rtol": 0.0001}}}'


def test_a_card_is_checked_registered_by_its_content_and_posted_with_the_file(
        uploader_hub, store, artifact_server, tmp_path):
    card_file = tmp_path / "card.json"
    card_file.write_bytes(CARD)
    upload = uploader_hub.upload_model(IRIS, "iris", PRICE, store=store, relayer_url=artifact_server["url"],
                                       card=card_file)
    card_cid = digest_to_cid(hashlib.sha256(CARD).digest())
    model = uploader_hub.get_model(upload.model_id)
    assert model.metadata_uri == "ipfs://" + card_cid
    # Jurors fetch the card by that content id, so it must be where the file is.
    assert store.get(card_cid) == CARD and artifact_server["store"].get(card_cid) == CARD
    assert uploader_hub.versions_with_card(model.metadata_uri) == [(upload.model_id, 1)]

    published = uploader_hub.publish_version(upload.model_id, DIABETES, card=CARD + b"\n")
    assert uploader_hub.get_model(upload.model_id).metadata_uri == "ipfs://" + digest_to_cid(
        hashlib.sha256(CARD + b"\n").digest())
    assert published.version == 2


@pytest.mark.parametrize("card, message", [
    (b"not json", "the model card cannot be registered: the card is not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"tolerance": {"probabilities": {"atol": -1}}}', "tolerance is malformed"),
    (b" " * (256 * 1024 + 1), "more than the 262144 a juror reads"),
])
def test_a_card_jurors_could_not_read_is_refused_before_registering(uploader_hub, store, card, message):
    with pytest.raises(errors.InvalidModelCardError, match=message):
        uploader_hub.upload_model(IRIS, "iris", PRICE, store=store, card=card)
    assert uploader_hub.list_models() == []
    assert not store.has(digest_to_cid(hashlib.sha256(IRIS.read_bytes()).digest()))


def test_a_card_and_a_metadata_uri_together_are_refused(uploader_hub, iris, tmp_path):
    with pytest.raises(ValueError, match="not both"):
        uploader_hub.upload_model(IRIS, "iris", PRICE, "ipfs://card", card=CARD)
    with pytest.raises(errors.InvalidModelCardError, match="cannot read the model card .*missing.json"):
        uploader_hub.publish_version(iris.model_id, DIABETES, card=tmp_path / "missing.json")
    assert uploader_hub.get_model(iris.model_id).latest_version == 1


def test_publish_version_makes_the_new_file_the_latest(uploader_hub, iris, store):
    version, digest, cid = uploader_hub.publish_version(iris.model_id, DIABETES, "ipfs://v2", store=store)
    model = uploader_hub.get_model(iris.model_id)
    assert version == model.latest_version == 2
    assert [v.digest for v in model.versions] == [iris.digest, digest]
    assert model.metadata_uri == "ipfs://v2"
    assert store.has(cid)


def test_only_the_owner_may_publish_a_version(stranger_hub, iris, store):
    with pytest.raises(errors.NotModelOwnerError, match="does not own model"):
        stranger_hub.publish_version(iris.model_id, DIABETES, store=store)
    assert not store.has(digest_to_cid(hashlib.sha256(DIABETES.read_bytes()).digest()))


def test_set_price_changes_the_price_and_a_stranger_cannot(uploader_hub, stranger_hub, iris):
    uploader_hub.set_price(iris.model_id, 7)
    assert uploader_hub.get_model(iris.model_id).price == 7
    with pytest.raises(errors.NotModelOwnerError, match=f"does not own model {iris.model_id}"):
        stranger_hub.set_price(iris.model_id, 1)


def test_set_payees_shares_revenue_and_bad_shares_are_explained(uploader_hub, iris, uploader, coauthor):
    uploader_hub.set_payees(iris.model_id, [(uploader, 7_000), (coauthor.address, 3_000)])
    payees = uploader_hub.get_model(iris.model_id).payees
    assert [(p.account, p.share) for p in payees] == [(uploader.address, 7_000), (coauthor.address, 3_000)]
    with pytest.raises(errors.InvalidPayeesError, match="sum to 9000 bps but must sum to 10000"):
        uploader_hub.set_payees(iris.model_id, [(uploader, 6_000), (coauthor, 3_000)])


def test_transfer_model_hands_over_control(uploader_hub, hub_for, iris, coauthor):
    uploader_hub.transfer_model(iris.model_id, coauthor)
    assert uploader_hub.get_model(iris.model_id).owner == coauthor.address
    hub_for(coauthor).set_active(iris.model_id, False)
    assert uploader_hub.get_model(iris.model_id).active is False
    with pytest.raises(errors.NotModelOwnerError):
        uploader_hub.set_active(iris.model_id, True)


def test_an_unknown_model_is_named_in_reads_and_in_transactions(uploader_hub, iris):
    with pytest.raises(errors.UnknownModelError, match="model 99 does not exist"):
        uploader_hub.get_model(99)  # a read-only call: decoded from anvil's revert text
    with pytest.raises(errors.UnknownModelError, match="model 99 does not exist"):
        uploader_hub.set_price(99, 1)  # a transaction: decoded by Ape


# ---------------------------------------------------------------- callers


def test_deposit_approves_the_escrow_and_credits_the_caller(caller_hub):
    assert caller_hub.faucet(5 * PRICE) == 5 * PRICE
    assert caller_hub.deposit(3 * PRICE) == 3 * PRICE
    assert caller_hub.token_balance() == 2 * PRICE
    assert caller_hub.withdraw(PRICE) == 2 * PRICE
    assert caller_hub.balance() == 2 * PRICE
    assert caller_hub.token_balance() == 3 * PRICE


def test_depositing_more_than_the_wallet_holds_points_at_the_faucet(caller_hub):
    with pytest.raises(errors.InsufficientTokenBalanceError, match="Hub.faucet"):
        caller_hub.deposit(PRICE)


def test_the_faucet_exists_only_on_dev_chains(caller_hub):
    caller_hub.deployment = caller_hub.deployment.model_copy(update={"chain_id": 11155111})
    with pytest.raises(errors.NotADevChainError, match="no faucet"):
        caller_hub.faucet(1)


def test_request_sends_compact_json_and_locks_the_price(funded_caller, iris, caller):
    expected_id = funded_caller.next_request_id()
    call = funded_caller.request(iris.model_id, IRIS_INPUT)
    data = b'{"X":[[5.1,3.5,1.4,0.2]]}'
    assert call.id == expected_id == (int(caller.address, 16) << 96) | 1
    assert (call.caller, call.model_id, call.version, call.price) == (caller.address, iris.model_id, 1, PRICE)
    assert call.input_hash == keccak(data)
    assert call.status is RequestStatus.PENDING
    assert funded_caller.get_request(call.id) == call
    assert funded_caller.balance() == 9 * PRICE


def test_a_request_without_enough_credit_says_how_much_to_deposit(caller_hub, iris):
    caller_hub.faucet(PRICE)
    caller_hub.deposit(PRICE // 4)
    shortfall = PRICE - PRICE // 4
    with pytest.raises(errors.InsufficientCreditError, match=f"deposit {shortfall} more"):
        caller_hub.request(iris.model_id, IRIS_INPUT)


def test_a_request_above_max_price_is_refused(funded_caller, iris):
    with pytest.raises(errors.PriceAboveMaxError, match=f"costs {PRICE} per call, above your max_price of 5"):
        funded_caller.request(iris.model_id, IRIS_INPUT, max_price=5)


def test_requests_to_unknown_inactive_or_unpublished_models_are_refused(funded_caller, uploader_hub, iris):
    with pytest.raises(errors.UnknownModelError):
        funded_caller.request(99, IRIS_INPUT)
    with pytest.raises(errors.UnknownVersionError, match="its latest is 1"):
        funded_caller.request(iris.model_id, IRIS_INPUT, version=2)
    uploader_hub.set_active(iris.model_id, False)
    with pytest.raises(errors.ModelInactiveError, match="set_active"):
        funded_caller.request(iris.model_id, IRIS_INPUT)
    assert funded_caller.balance() == 10 * PRICE


@pytest.mark.parametrize("error_name, args, expected", [
    ("InferenceEscrow_ModelInactive", {}, errors.ModelInactiveError),
    ("InferenceEscrow_PriceAboveMax", {"max_price": 1}, errors.PriceAboveMaxError),
    ("InferenceEscrow_InsufficientCredit", {"credit": 0}, errors.InsufficientCreditError),
])
def test_the_contracts_own_refusals_map_to_the_same_exceptions(
        funded_caller, uploader_hub, iris, error_name, args, expected):
    # Skips the SDK's pre-checks, as a race (price change, spent credit) would.
    if error_name == "InferenceEscrow_ModelInactive":
        uploader_hub.set_active(iris.model_id, False)
    if "credit" in args:
        funded_caller.withdraw(funded_caller.balance())
    escrow = funded_caller.contracts.escrow
    with pytest.raises(expected) as caught:
        funded_caller._send(escrow.requestInference, iris.model_id, 0, encode_input(IRIS_INPUT),
                            args.get("max_price", PRICE))
    assert caught.value.error_name == error_name
    assert caught.value.inputs  # the arguments were decoded, not lost


def test_inputs_that_are_not_json_tensors_are_refused_before_paying(funded_caller, iris):
    with pytest.raises(errors.InvalidInputError):
        funded_caller.request(iris.model_id, {"X": "five"})
    with pytest.raises(errors.InvalidInputError):
        funded_caller.request(iris.model_id, b"[1, 2]")
    assert funded_caller.balance() == 10 * PRICE


@pytest.mark.parametrize("request_id", [
    12345,  # anvil writes the revert's argument bytes as text...
    0xC3A9,  # ...also when they spell a non-ASCII character ("é")...
    (0xFF << 248) | 0xFF80,  # ...and as hex digits when they are not UTF-8
])
def test_an_unknown_request_id_is_reported_as_not_found(caller_hub, request_id):
    with pytest.raises(errors.RequestNotFoundError, match=f"no request has id {request_id};"):
        caller_hub.get_request(request_id)


def test_refund_waits_for_the_deadline_then_returns_the_price(funded_caller, iris, chain):
    call = funded_caller.request(iris.model_id, IRIS_INPUT)
    with pytest.raises(errors.RefundTooEarlyError, match="only after its deadline"):
        funded_caller.refund(call.id)
    chain.mine(timestamp=call.deadline + 1)
    assert funded_caller.refund(call.id).status is RequestStatus.REFUNDED
    assert funded_caller.balance() == 10 * PRICE
    with pytest.raises(errors.RequestNotPendingError, match="already ended \\(refunded\\)"):
        funded_caller.refund(call.id)


def test_wait_for_request_returns_the_end_status_or_times_out(funded_caller, bonded_relayer, iris):
    # Designated to the relayer: only then may a relayer reject a call.
    call = funded_caller.request(iris.model_id, IRIS_INPUT, relayer=bonded_relayer.address)
    with pytest.raises(errors.RequestWaitTimeoutError, match="still pending"):
        funded_caller.wait_for_request(call.id, timeout=0)
    bonded_relayer.reject(call.id, errors.RejectReason.INPUT_MISMATCH)
    assert funded_caller.wait_for_request(call.id, timeout=5, poll=0.1) is RequestStatus.REJECTED
    assert funded_caller.balance() == 10 * PRICE


# ---------------------------------------------------------------- relayers


def test_relayer_register_bonds_and_reports_the_relayer(bonded_relayer, relayer):
    info = bonded_relayer.relayer_info()
    assert (info.address, info.endpoint, info.bond, info.active, info.unbond_at) == (
        relayer.address, "http://127.0.0.1:8700", bonded_relayer.min_bond, True, 0)
    bonded_relayer.faucet(bonded_relayer.min_bond)
    with pytest.raises(errors.RelayerRegistrationError, match="already registered"):
        bonded_relayer.relayer_register("http://elsewhere", bonded_relayer.min_bond)


def test_a_relayer_adds_bond_unbonds_and_withdraws_only_after_the_delay(bonded_relayer, chain, relayers):
    least = bonded_relayer.min_bond
    bonded_relayer.faucet(7)
    assert bonded_relayer.relayer_add_bond(7).bond == least + 7
    assert bonded_relayer.relayer_set_endpoint("https://relayer.example").endpoint == "https://relayer.example"
    wallet = bonded_relayer.token_balance()

    leaving = bonded_relayer.relayer_begin_unbond()
    assert not leaving.active and leaving.unbonding and leaving.registered
    assert leaving.unbond_at == chain.blocks.head.timestamp + bonded_relayer.unbond_delay
    with pytest.raises(errors.RelayerRegistrationError, match=f"can be withdrawn from {leaving.unbond_at}"):
        bonded_relayer.relayer_withdraw_bond()  # too early: refused before sending anything
    with pytest.raises(errors.RelayerRegistrationError, match="is unbonding"):
        bonded_relayer.relayer_add_bond(1)
    assert bonded_relayer.token_balance() == wallet and relayers.relayerInfo(bonded_relayer.address)[1] == least + 7

    chain.mine(timestamp=leaving.unbond_at)
    assert bonded_relayer.relayer_withdraw_bond() == least + 7
    assert bonded_relayer.token_balance() == wallet + least + 7
    gone = bonded_relayer.relayer_info()
    assert not gone.registered and not gone.active and gone.endpoint == ""
    with pytest.raises(errors.RelayerRegistrationError, match="is not a registered relayer"):
        bonded_relayer.relayer_withdraw_bond()


def test_a_bond_below_the_minimum_is_explained(relayer_hub):
    relayer_hub.faucet(5)
    with pytest.raises(errors.RelayerRegistrationError, match="below the minimum"):
        relayer_hub.relayer_register("http://127.0.0.1:8700", 5)


def test_only_the_designated_relayer_may_reject_and_open_calls_nobody(
        funded_caller, bonded_relayer, stranger_hub, iris):
    open_call = funded_caller.request(iris.model_id, IRIS_INPUT)
    assert funded_caller.designated_relayer(open_call.id) is None
    for hub in (stranger_hub, bonded_relayer):
        with pytest.raises(errors.NotDesignatedRelayerError, match="cannot be rejected"):
            hub.reject(open_call.id, errors.RejectReason.OTHER)
    designated = funded_caller.request(iris.model_id, IRIS_INPUT, relayer=bonded_relayer.address)
    assert funded_caller.designated_relayer(designated.id) == bonded_relayer.address
    with pytest.raises(errors.NotDesignatedRelayerError, match="only that relayer may serve or reject"):
        stranger_hub.reject(designated.id, errors.RejectReason.OTHER)
    bonded_relayer.reject(designated.id, errors.RejectReason.INPUT_MISMATCH)
    assert funded_caller.get_request(designated.id).status is RequestStatus.REJECTED
    assert funded_caller.get_request(open_call.id).status is RequestStatus.PENDING


def test_a_call_designated_to_an_inactive_relayer_is_refused_before_paying(funded_caller, stranger_hub, iris):
    with pytest.raises(errors.NotActiveRelayerError, match="is not an active relayer"):
        funded_caller.request(iris.model_id, IRIS_INPUT, relayer=stranger_hub.address)
    assert funded_caller.balance() == 10 * PRICE


def test_requests_since_decodes_each_requested_call(funded_caller, relayer_hub, iris, caller, deployment):
    first = funded_caller.request(iris.model_id, IRIS_INPUT)
    second = funded_caller.request(iris.model_id, b'{"X":[[1,2,3,4]]}')
    seen = list(relayer_hub.requests_since(deployment.start_block))
    assert [c.request_id for c in seen] == [first.id, second.id]
    call = seen[1]
    assert (call.model_id, call.version, call.caller, call.price) == (iris.model_id, 1, caller.address, PRICE)
    assert call.input == b'{"X":[[1,2,3,4]]}' and call.input_hash == keccak(call.input)
    only_first = list(relayer_hub.requests_since(deployment.start_block, seen[0].block_number))
    assert [c.request_id for c in only_first] == [first.id]
    assert list(relayer_hub.requests_since(seen[1].block_number + 1)) == []


def test_sign_attestation_signs_for_the_escrow_domain(bonded_relayer, funded_caller, iris, relayer, deployment):
    att = attest(funded_caller.request(iris.model_id, IRIS_INPUT))
    signature = bonded_relayer.sign_attestation(att)
    assert recover_signer(att, signature, deployment.chain_id, deployment.inference_escrow) == relayer.address


def test_fulfill_batch_settles_the_good_item_and_skips_the_forged_one(
        funded_caller, bonded_relayer, stranger_hub, iris, treasury):
    good = funded_caller.request(iris.model_id, IRIS_INPUT)
    forged = funded_caller.request(iris.model_id, IRIS_INPUT)
    items = [(attest(good), bonded_relayer.sign_attestation(attest(good))),
             (attest(forged), stranger_hub.sign_attestation(attest(forged)))]
    outcomes = stranger_hub.fulfill_batch(items)  # anyone may submit
    assert [(o.request_id, o.settled, o.skip_reason) for o in outcomes] == [
        (good.id, True, SkipReason.NONE), (forged.id, False, SkipReason.NOT_ACTIVE_RELAYER)]
    assert funded_caller.get_request(good.id).status is RequestStatus.FULFILLED
    assert funded_caller.get_request(forged.id).status is RequestStatus.PENDING
    # 5% treasury, 10% relayer, the rest to the uploader.
    assert bonded_relayer.earnings() == PRICE // 10
    assert bonded_relayer.earnings(treasury) == PRICE // 20
    assert funded_caller.model_stats(iris.model_id) == (1, PRICE)


def test_fulfill_batch_reports_mismatched_and_already_settled_items(funded_caller, bonded_relayer, iris):
    call = funded_caller.request(iris.model_id, IRIS_INPUT)
    right = attest(call)
    wrong = attest(call, input_hash=keccak(b"another input"))
    outcomes = bonded_relayer.fulfill_batch([(wrong, bonded_relayer.sign_attestation(wrong)),
                                             (right, bonded_relayer.sign_attestation(right)),
                                             (right, bonded_relayer.sign_attestation(right))])
    assert [o.skip_reason for o in outcomes] == [SkipReason.MISMATCH, SkipReason.NONE, SkipReason.NOT_PENDING]
    assert bonded_relayer.fulfill_batch([]) == []


def test_fulfill_settles_one_call_and_refuses_to_settle_it_twice(funded_caller, bonded_relayer, iris):
    call = funded_caller.request(iris.model_id, IRIS_INPUT)
    att = attest(call)
    signature = bonded_relayer.sign_attestation(att)
    assert bonded_relayer.fulfill(att, signature).settled
    with pytest.raises(errors.RequestNotPendingError, match="already ended \\(fulfilled\\)"):
        bonded_relayer.fulfill(att, signature)


def test_withdraw_earnings_pays_out_once(funded_caller, bonded_relayer, uploader_hub, iris):
    call = funded_caller.request(iris.model_id, IRIS_INPUT)
    bonded_relayer.fulfill(attest(call), bonded_relayer.sign_attestation(attest(call)))
    owed = uploader_hub.earnings()
    assert owed == PRICE - PRICE // 10 - PRICE // 20
    assert uploader_hub.withdraw_earnings() == owed
    assert uploader_hub.token_balance() == owed
    with pytest.raises(errors.NothingToWithdrawError, match="no earnings to withdraw"):
        uploader_hub.withdraw_earnings()


# ---------------------------------------------------------------- discovery


def test_list_models_describes_every_model_with_its_usage(
        uploader_hub, funded_caller, bonded_relayer, store, iris, uploader):
    second = uploader_hub.upload_model(DIABETES, "diabetes", 0, store=store)
    call = funded_caller.request(iris.model_id, IRIS_INPUT)
    bonded_relayer.fulfill(attest(call), bonded_relayer.sign_attestation(attest(call)))
    models = funded_caller.list_models()
    assert [(m.id, m.name, m.price, m.active) for m in models] == [
        (iris.model_id, "iris", PRICE, True), (second.model_id, "diabetes", 0, True)]
    first = models[0]
    assert (first.calls, first.revenue) == (1, PRICE)
    assert (models[1].calls, models[1].revenue) == (0, 0)
    assert first.payees == ((uploader.address, 10_000),)
    assert first.versions[0].cid == iris.cid and first.versions[0].published_at > 0
    assert funded_caller.get_model(iris.model_id) == first


def test_a_free_model_can_be_called_on_chain_without_credit(caller_hub, uploader_hub, store):
    free = uploader_hub.upload_model(IRIS, "free iris", 0, store=store)
    call = caller_hub.request(free.model_id, json.dumps(IRIS_INPUT).encode())
    assert call.price == 0


# ---------------------------------------------------------------- receipts (the settlement side)


def test_settle_receipts_reports_each_item_paid_or_skipped_with_its_reason(
    iris, funded_caller, bonded_relayer, caller
):
    from modelhub.contracts import ReceiptSkipReason
    from modelhub.typed_data import KeySigner, Receipt

    signer = KeySigner(caller.private_key)
    d = funded_caller.deployment
    deadline = 2**40
    funded_caller.reserve(bonded_relayer.address, 8 * PRICE)
    good = Receipt(caller.address, bonded_relayer.address, iris.model_id, 2, 2 * PRICE, deadline)
    cheap = Receipt(caller.address, bonded_relayer.address, iris.model_id, 5, 5 * PRICE - 1, deadline)
    too_much = Receipt(caller.address, bonded_relayer.address, iris.model_id, 20, 20 * PRICE, deadline)
    items = [(r, signer.sign_receipt(r, d.chain_id, d.inference_escrow))
             for r in (good, good, cheap, too_much)]
    credit = funded_caller.balance()

    outcomes = bonded_relayer.settle_receipts(items)

    assert [(o.settled, o.paid, o.skip_reason) for o in outcomes] == [
        (True, 2 * PRICE, ReceiptSkipReason.NONE),
        (False, 0, ReceiptSkipReason.NOT_NEWER),  # the same receipt again pays nothing
        (False, 0, ReceiptSkipReason.UNDERPRICED),
        (False, 0, ReceiptSkipReason.INSUFFICIENT_CREDIT),  # more than the reservation
    ]
    assert bonded_relayer.channel(caller, bonded_relayer.address, iris.model_id) == (2, 2 * PRICE)
    # Paid out of the reservation; free credit is untouched.
    assert funded_caller.reservation(relayer=bonded_relayer.address).reserved == 6 * PRICE
    assert funded_caller.balance() == credit


def test_the_hub_reads_what_relayers_and_sessions_need_without_its_contracts(
    iris, funded_caller, bonded_relayer, uploader_hub, caller, deployment
):
    from modelhub.hub import ReceiptTerms
    from modelhub.typed_data import KeySigner, Receipt

    hub = funded_caller
    assert (hub.escrow_address, hub.registry_address, hub.relayers_address, hub.token_address) == (
        deployment.inference_escrow, deployment.model_registry, deployment.relayer_registry, deployment.token)
    assert bonded_relayer.address in hub.registered_relayers()
    assert len(set(hub.registered_relayers())) == len(hub.registered_relayers())
    assert hub.receipt_terms(iris.model_id) == ReceiptTerms(True, PRICE, PRICE, 0, 1, True)
    assert hub.receipt_terms(99) == ReceiptTerms(False)
    uploader_hub.set_price(iris.model_id, 3 * PRICE)
    rise = hub.receipt_terms(iris.model_id)
    assert (rise.price, rise.floor_price) == (3 * PRICE, PRICE) and rise.floor_ends_at > 0

    hub.reserve(bonded_relayer.address, 4 * PRICE)
    pairs = hub.reservations_and_signers([caller, bonded_relayer.address], bonded_relayer.address)
    assert pairs == [(hub.reservation(caller, bonded_relayer.address), hub.receipt_signer(caller)),
                     (hub.reservation(bonded_relayer.address, bonded_relayer.address),
                      hub.receipt_signer(bonded_relayer.address))]
    assert pairs[0][0].reserved >= 4 * PRICE

    assert hub.settlement_gas(iris.model_id) == (0, 0)
    d = hub.deployment
    receipt = Receipt(caller.address, bonded_relayer.address, iris.model_id, 1, PRICE, 2**40)
    bonded_relayer.settle_receipts([(receipt, KeySigner(caller.private_key).sign_receipt(receipt, d.chain_id,
                                                                                         d.inference_escrow))])
    gas, transactions = hub.settlement_gas(iris.model_id)
    assert transactions == 1 and gas > 21_000


def test_price_notice_gives_the_old_price_for_receipts_after_a_rise_and_nothing_pending_otherwise(
    uploader_hub, iris
):
    from modelhub.hub import PriceNotice

    assert uploader_hub.price_notice(iris.model_id) == PriceNotice(PRICE, 0)
    uploader_hub.set_price(iris.model_id, 3 * PRICE)
    notice = uploader_hub.price_notice(iris.model_id)
    assert notice.receipt_price == PRICE
    assert notice.ends_at > 0
    uploader_hub.set_price(iris.model_id, PRICE // 2)  # a cut applies at once
    assert uploader_hub.price_notice(iris.model_id) == PriceNotice(PRICE // 2, 0)
    with pytest.raises(errors.UnknownModelError):
        uploader_hub.price_notice(99)


def test_a_free_model_costs_one_base_unit_per_receipt_call(uploader_hub, store):
    free = uploader_hub.upload_model(IRIS, "free iris", 0, store=store)
    assert uploader_hub.price_notice(free.model_id).receipt_price == 1


def test_a_reservation_is_reserved_released_after_the_delay_and_its_errors_say_when(
        funded_caller, bonded_relayer, chain):
    relayer = bonded_relayer.address
    assert funded_caller.reservation(relayer=relayer).reserved == 0
    held = funded_caller.reserve(relayer, 4 * PRICE)
    assert (held.reserved, held.releasing, held.release_at, held.spendable) == (4 * PRICE, 0, 0, 4 * PRICE)
    assert funded_caller.balance() == 6 * PRICE
    assert funded_caller.reservations() == [held]
    with pytest.raises(errors.InsufficientCreditError, match="has 6000000000000000 in free credit"):
        funded_caller.reserve(relayer, 7 * PRICE)
    with pytest.raises(errors.NothingToReleaseError, match="announce one first"):
        funded_caller.release(relayer)

    held = funded_caller.announce_release(relayer, PRICE)
    assert (held.releasing, held.spendable) == (PRICE, 3 * PRICE)
    assert held.release_at >= chain.blocks.head.timestamp + funded_caller.withdrawal_delay
    with pytest.raises(errors.ReleaseNotReadyError, match="wait until then"):
        funded_caller.release(relayer)
    chain.mine(timestamp=held.release_at)
    assert funded_caller.release(relayer) == PRICE
    assert funded_caller.reservation(relayer=relayer).reserved == 3 * PRICE
    assert funded_caller.withdraw(7 * PRICE) == 0  # free credit leaves in one step

    assert funded_caller.announce_release(relayer, 0).release_at == 0  # 0 cancels


def test_the_escrows_own_release_refusals_map_to_their_exceptions(funded_caller, bonded_relayer):
    escrow = funded_caller.contracts.escrow
    relayer = bonded_relayer.address
    with pytest.raises(errors.NothingToReleaseError) as caught:
        funded_caller._send(escrow.release, relayer)  # past the SDK's own check
    assert caught.value.inputs == {"caller": funded_caller.address, "relayer": relayer}
    funded_caller.reserve(relayer, PRICE)
    funded_caller.announce_release(relayer, PRICE)
    with pytest.raises(errors.ReleaseNotReadyError, match="possible from") as caught:
        funded_caller._send(escrow.release, relayer)
    assert caught.value.inputs["readyAt"] > 0


def test_receipt_signer_keys_apply_at_once_first_and_after_the_delay_when_replaced(
        funded_caller, coauthor, stranger, chain):
    assert funded_caller.receipt_signer().signer is None
    key = funded_caller.set_receipt_signer(coauthor)
    assert (key.signer, key.next_signer, key.next_at) == (coauthor.address, None, 0)
    key = funded_caller.set_receipt_signer(stranger.address)
    assert (key.signer, key.next_signer) == (coauthor.address, stranger.address)
    assert key.next_at >= chain.blocks.head.timestamp + funded_caller.withdrawal_delay
    chain.mine(timestamp=key.next_at)
    assert funded_caller.receipt_signer().signer == stranger.address


def test_fee_changes_wait_their_notice_and_are_shown_pending(hub_for, deployer, funded_caller, chain):
    operator = hub_for(deployer)
    assert operator.pending_fees() is None
    operator._send(operator.contracts.escrow.setRelayerFeeBps, 0)
    pending = funded_caller.pending_fees()
    assert (pending.protocol_fee_bps, pending.relayer_fee_bps) == (500, 0)
    assert pending.effective_at >= chain.blocks.head.timestamp + funded_caller.terms_notice_period
    assert funded_caller.relayer_fee_bps == 1_000  # still in force
    chain.mine(timestamp=pending.effective_at)
    assert (funded_caller.pending_fees(), funded_caller.relayer_fee_bps) == (None, 0)


def test_a_min_bond_rise_waits_and_is_shown_pending(hub_for, deployer, funded_caller):
    operator = hub_for(deployer)
    assert operator.pending_min_bond() is None
    before = operator.min_bond
    operator._send(operator.contracts.relayers.setMinBond, 2 * before)
    pending = funded_caller.pending_min_bond()
    assert pending.min_bond == 2 * before and pending.effective_at > 0
    assert funded_caller.min_bond == before
