"""ModelRegistry: registration, versions, prices, payees, activity, transfer, views and pause."""

from __future__ import annotations

import hashlib

import pytest

from tests.support.contracts import one_event, reverts, same

MAX_PRICE = 2**128 - 1
DIGEST = hashlib.sha256(b"model v1").digest()
DIGEST_2 = hashlib.sha256(b"model v2").digest()


@pytest.fixture
def model(create_model):
    return create_model(price=1_000)


# ---------------------------------------------------------------- registerModel


def test_registering_a_model_numbers_it_from_one_and_records_version_one(registry, uploader, chain):
    assert registry.modelCount() == 0
    tx = registry.registerModel("iris", DIGEST, "ipfs://card-1", 1_234, sender=uploader)

    assert tx.return_value == 1
    assert registry.modelCount() == 1
    event = one_event(tx, registry.ModelRegistered)
    assert event.modelId == 1 and same(event.owner, uploader)
    assert event.name == "iris" and event.artifactDigest == DIGEST
    assert event.pricePerCall == 1_234 and event.metadataURI == "ipfs://card-1"

    owner, price, latest, active, name, uri = registry.getModel(1)
    assert same(owner, uploader) and price == 1_234 and latest == 1 and active
    assert name == "iris" and uri == "ipfs://card-1"
    digest, published_at = registry.getVersion(1, 1)
    assert digest == DIGEST
    assert published_at == chain.blocks.head.timestamp


def test_the_second_model_gets_id_two_and_the_count_follows(registry, uploader, stranger):
    registry.registerModel("a", DIGEST, "", 1, sender=uploader)
    tx = registry.registerModel("b", DIGEST, "", 2, sender=stranger)
    assert tx.return_value == 2
    assert registry.modelCount() == 2
    assert same(registry.getModel(2)[0], stranger)


def test_a_free_model_with_price_zero_can_be_registered(registry, uploader):
    tx = registry.registerModel("free", DIGEST, "", 0, sender=uploader)
    assert registry.getModel(tx.return_value)[1] == 0


def test_the_largest_price_is_accepted_and_one_more_is_refused(registry, uploader):
    tx = registry.registerModel("max", DIGEST, "", MAX_PRICE, sender=uploader)
    assert registry.getModel(tx.return_value)[1] == MAX_PRICE
    with reverts(registry.ModelRegistry_PriceTooHigh, pricePerCall=MAX_PRICE + 1, maxPricePerCall=MAX_PRICE):
        registry.registerModel("too much", DIGEST, "", MAX_PRICE + 1, sender=uploader)


def test_registering_with_an_empty_name_reverts(registry, uploader):
    with reverts(registry.ModelRegistry_EmptyName):
        registry.registerModel("", DIGEST, "", 1, sender=uploader)


def test_registering_with_a_zero_digest_reverts(registry, uploader):
    with reverts(registry.ModelRegistry_ZeroDigest):
        registry.registerModel("iris", b"\x00" * 32, "", 1, sender=uploader)
    assert registry.modelCount() == 0


# ---------------------------------------------------------------- publishVersion


def test_publishing_a_version_makes_it_the_latest_with_its_model_card(registry, uploader, model, chain):
    tx = registry.publishVersion(model, DIGEST_2, "ipfs://card-2", sender=uploader)
    assert tx.return_value == 2
    event = one_event(tx, registry.VersionPublished)
    assert (event.modelId, event.version, event.artifactDigest, event.metadataURI) == (
        model, 2, DIGEST_2, "ipfs://card-2"
    )
    _, _, latest, _, _, uri = registry.getModel(model)
    assert latest == 2 and uri == "ipfs://card-2"
    assert registry.getVersion(model, 2) == (DIGEST_2, chain.blocks.head.timestamp)
    # version 1 keeps its digest
    assert registry.getVersion(model, 1)[0] == hashlib.sha256(b"onnx-bytes").digest()


def test_publishing_with_a_zero_digest_reverts(registry, uploader, model):
    with reverts(registry.ModelRegistry_ZeroDigest):
        registry.publishVersion(model, b"\x00" * 32, "", sender=uploader)


def test_only_the_model_owner_publishes_versions(registry, stranger, model):
    with reverts(registry.ModelRegistry_NotModelOwner, modelId=model, account=stranger):
        registry.publishVersion(model, DIGEST_2, "", sender=stranger)


# ---------------------------------------------------------------- setPrice / setActive


def test_setting_the_price_emits_old_and_new_price(registry, uploader, model):
    tx = registry.setPrice(model, 77, sender=uploader)
    event = one_event(tx, registry.PriceChanged)
    assert (event.modelId, event.oldPrice, event.newPrice) == (model, 1_000, 77)
    assert registry.getModel(model)[1] == 77


def test_setting_a_price_above_the_cap_reverts(registry, uploader, model):
    with reverts(registry.ModelRegistry_PriceTooHigh, pricePerCall=MAX_PRICE + 1):
        registry.setPrice(model, MAX_PRICE + 1, sender=uploader)


def test_only_the_model_owner_sets_the_price(registry, stranger, model):
    with reverts(registry.ModelRegistry_NotModelOwner, modelId=model, account=stranger):
        registry.setPrice(model, 1, sender=stranger)


def test_switching_a_model_off_and_on_emits_the_flag(registry, uploader, model):
    tx = registry.setActive(model, False, sender=uploader)
    event = one_event(tx, registry.ModelActiveChanged)
    assert event.modelId == model and not event.active
    assert registry.getModel(model)[3] is False
    tx = registry.setActive(model, True, sender=uploader)
    assert one_event(tx, registry.ModelActiveChanged).active
    assert registry.getModel(model)[3] is True


def test_only_the_model_owner_switches_it_off(registry, stranger, model):
    with reverts(registry.ModelRegistry_NotModelOwner, modelId=model, account=stranger):
        registry.setActive(model, False, sender=stranger)


# ---------------------------------------------------------------- setPayees


def test_a_new_model_pays_its_owner_alone(registry, uploader, model):
    accounts, shares = registry.getPayees(model)
    assert [a.lower() for a in accounts] == [uploader.address.lower()]
    assert list(shares) == [10_000]


def test_setting_payees_stores_them_in_order_and_emits_them(registry, uploader, coauthor, third_payee, model):
    payees = [uploader.address, coauthor.address, third_payee.address]
    tx = registry.setPayees(model, payees, [5_000, 3_333, 1_667], sender=uploader)
    event = one_event(tx, registry.PayeesChanged)
    assert event.modelId == model
    assert [a.lower() for a in event.accounts] == [p.lower() for p in payees]
    assert list(event.shares) == [5_000, 3_333, 1_667]
    accounts, shares = registry.getPayees(model)
    assert [a.lower() for a in accounts] == [p.lower() for p in payees]
    assert list(shares) == [5_000, 3_333, 1_667]


def test_eight_payees_are_allowed_and_a_shorter_list_replaces_them_after_the_notice(
    registry, uploader, accounts, model, chain
):
    eight = [a.address for a in accounts[1:9]]
    tx = registry.setPayees(model, eight, [1_250] * 8, sender=uploader)
    assert one_event(tx, registry.PayeesEffectiveAt).effectiveAt == tx.timestamp  # the first: at once
    assert len(registry.getPayees(model)[0]) == 8
    tx = registry.setPayees(model, [accounts[5].address], [10_000], sender=uploader)
    effective_at = tx.timestamp + registry.priceNoticePeriod()
    assert one_event(tx, registry.PayeesEffectiveAt).effectiveAt == effective_at
    assert len(registry.getPayees(model)[0]) == 8  # still in force
    pending, pending_shares, at = registry.pendingPayees(model)
    assert [a.lower() for a in pending] == [accounts[5].address.lower()]
    assert (list(pending_shares), at) == ([10_000], effective_at)

    chain.mine(timestamp=effective_at - 1)
    assert len(registry.getPayees(model)[0]) == 8
    chain.mine(timestamp=effective_at)
    got, shares = registry.getPayees(model)
    assert [a.lower() for a in got] == [accounts[5].address.lower()] and list(shares) == [10_000]
    assert registry.pendingPayees(model) == ([], [], 0)


def test_a_second_change_within_the_notice_replaces_the_pending_one(registry, uploader, coauthor, third_payee, model, chain):
    registry.setPayees(model, [uploader.address, coauthor.address], [5_000, 5_000], sender=uploader)
    registry.setPayees(model, [coauthor.address], [10_000], sender=uploader)
    tx = registry.setPayees(model, [third_payee.address], [10_000], sender=uploader)
    chain.mine(timestamp=tx.timestamp + registry.priceNoticePeriod())
    got, _ = registry.getPayees(model)
    assert [a.lower() for a in got] == [third_payee.address.lower()]
    # and once in force, the next change waits again, starting from those
    tx = registry.setPayees(model, [uploader.address], [10_000], sender=uploader)
    assert [a.lower() for a in registry.getPayees(model)[0]] == [third_payee.address.lower()]
    chain.mine(timestamp=tx.timestamp + registry.priceNoticePeriod())
    assert [a.lower() for a in registry.getPayees(model)[0]] == [uploader.address.lower()]


def test_zero_payees_revert(registry, uploader, model):
    with reverts(registry.ModelRegistry_PayeeCount, count=0, maxCount=8):
        registry.setPayees(model, [], [], sender=uploader)


def test_nine_payees_revert(registry, uploader, accounts, stranger, model):
    nine = [a.address for a in accounts[1:10]]
    shares = [1_111] * 8 + [1_112]
    with reverts(registry.ModelRegistry_PayeeCount, count=9, maxCount=8):
        registry.setPayees(model, nine, shares, sender=uploader)


def test_payees_and_shares_of_different_lengths_revert(registry, uploader, coauthor, model):
    with reverts(registry.ModelRegistry_LengthMismatch, accounts=2, shares=1):
        registry.setPayees(model, [uploader.address, coauthor.address], [10_000], sender=uploader)


def test_a_zero_address_payee_reverts(registry, uploader, model):
    zero = "0x0000000000000000000000000000000000000000"
    with reverts(registry.ModelRegistry_ZeroAddress):
        registry.setPayees(model, [uploader.address, zero], [5_000, 5_000], sender=uploader)


def test_a_zero_share_reverts(registry, uploader, coauthor, model):
    with reverts(registry.ModelRegistry_ZeroShare, account=coauthor):
        registry.setPayees(model, [uploader.address, coauthor.address], [10_000, 0], sender=uploader)


def test_a_duplicate_payee_reverts(registry, uploader, coauthor, model):
    with reverts(registry.ModelRegistry_DuplicatePayee, account=uploader):
        registry.setPayees(
            model, [uploader.address, coauthor.address, uploader.address], [4_000, 3_000, 3_000], sender=uploader
        )


@pytest.mark.parametrize("shares, total", [([5_000, 4_999], 9_999), ([5_000, 5_001], 10_001)])
def test_shares_not_summing_to_ten_thousand_revert(registry, uploader, coauthor, model, shares, total):
    with reverts(registry.ModelRegistry_SharesTotal, total=total, required=10_000):
        registry.setPayees(model, [uploader.address, coauthor.address], shares, sender=uploader)


def test_only_the_model_owner_sets_payees(registry, stranger, model):
    with reverts(registry.ModelRegistry_NotModelOwner, modelId=model, account=stranger):
        registry.setPayees(model, [stranger.address], [10_000], sender=stranger)


# ---------------------------------------------------------------- transferModel


def test_transferring_a_model_moves_ownership_and_the_default_payee_follows(registry, uploader, stranger, model):
    tx = registry.transferModel(model, stranger, sender=uploader)
    event = one_event(tx, registry.ModelTransferred)
    assert event.modelId == model and same(event.__getattr__("from"), uploader) and same(event.to, stranger)
    assert same(registry.getModel(model)[0], stranger)
    accounts, shares = registry.getPayees(model)
    assert [a.lower() for a in accounts] == [stranger.address.lower()] and list(shares) == [10_000]
    # the new owner has the powers, the old one lost them
    registry.setPrice(model, 5, sender=stranger)
    with reverts(registry.ModelRegistry_NotModelOwner, modelId=model, account=uploader):
        registry.setPrice(model, 6, sender=uploader)


def test_explicit_payees_survive_a_transfer(registry, uploader, coauthor, stranger, model):
    registry.setPayees(model, [uploader.address, coauthor.address], [6_000, 4_000], sender=uploader)
    registry.transferModel(model, stranger, sender=uploader)
    accounts, shares = registry.getPayees(model)
    assert [a.lower() for a in accounts] == [uploader.address.lower(), coauthor.address.lower()]
    assert list(shares) == [6_000, 4_000]


def test_transferring_to_the_zero_address_reverts(registry, uploader, model):
    with reverts(registry.ModelRegistry_ZeroAddress):
        registry.transferModel(model, "0x0000000000000000000000000000000000000000", sender=uploader)


def test_only_the_model_owner_transfers_it(registry, stranger, model):
    with reverts(registry.ModelRegistry_NotModelOwner, modelId=model, account=stranger):
        registry.transferModel(model, stranger, sender=stranger)


# ---------------------------------------------------------------- unknown ids


def test_unknown_model_ids_revert_in_every_view_and_owner_function(registry, uploader, model):
    unknown = model + 1
    for view in (registry.getModel, registry.getPayees):
        with reverts(registry.ModelRegistry_UnknownModel, modelId=unknown):
            view(unknown)
    with reverts(registry.ModelRegistry_UnknownModel, modelId=0):
        registry.getModel(0)
    with reverts(registry.ModelRegistry_UnknownModel, modelId=unknown):
        registry.getVersion(unknown, 1)
    with reverts(registry.ModelRegistry_UnknownModel, modelId=unknown):
        registry.setPrice(unknown, 1, sender=uploader)
    with reverts(registry.ModelRegistry_UnknownModel, modelId=unknown):
        registry.publishVersion(unknown, DIGEST, "", sender=uploader)
    with reverts(registry.ModelRegistry_UnknownModel, modelId=unknown):
        registry.setActive(unknown, False, sender=uploader)
    with reverts(registry.ModelRegistry_UnknownModel, modelId=unknown):
        registry.setPayees(unknown, [uploader.address], [10_000], sender=uploader)
    with reverts(registry.ModelRegistry_UnknownModel, modelId=unknown):
        registry.transferModel(unknown, uploader, sender=uploader)


def test_unknown_versions_of_a_known_model_revert(registry, model):
    with reverts(registry.ModelRegistry_UnknownVersion, modelId=model, version=2):
        registry.getVersion(model, 2)
    with reverts(registry.ModelRegistry_UnknownVersion, modelId=model, version=0):
        registry.getVersion(model, 0)


# ---------------------------------------------------------------- pause


def test_pause_stops_registration_only(registry, deployer, uploader, model):
    registry.pause(sender=deployer)
    with reverts(registry.EnforcedPause):
        registry.registerModel("iris", DIGEST, "", 1, sender=uploader)
    # the owners of existing models keep every power
    registry.publishVersion(model, DIGEST_2, "", sender=uploader)
    registry.setPrice(model, 5, sender=uploader)
    registry.setPayees(model, [uploader.address], [10_000], sender=uploader)
    registry.setActive(model, False, sender=uploader)
    registry.transferModel(model, deployer, sender=uploader)
    registry.unpause(sender=deployer)
    assert registry.registerModel("iris", DIGEST, "", 1, sender=uploader).return_value == model + 1


def test_only_the_contract_owner_pauses_the_registry(registry, stranger):
    with reverts(registry.OwnableUnauthorizedAccount, account=stranger):
        registry.pause(sender=stranger)
