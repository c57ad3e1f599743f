"""Receipts and the raw-word digests and libsecp256k1 signing of typed_data: the same EIP-712 digests
and signatures as eth_account, and recovery that refuses exactly the signatures OpenZeppelin's ECDSA refuses."""

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from modelhub.typed_data import (
    RECEIPT_TYPES,
    Attestation,
    KeySigner,
    Receipt,
    domain,
    recover_digest_signer,
    recover_signer,
    recover_valid_signer,
    sign,
    signable_message,
)
from modelhub.typed_data import call_id as receipt_call_id
from modelhub.typed_data import digest as attestation_digest
from modelhub.typed_data import digest as receipt_digest
from modelhub.typed_data import signable_message as attestation_message

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ESCROW = "0x" + "ab" * 20

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
receipts = st.builds(
    lambda caller, relayer, model, calls, amount, deadline: Receipt.from_json(
        {"caller": caller, "relayer": relayer, "modelId": model, "calls": calls, "amount": amount, "deadline": deadline}
    ),
    addresses, addresses, st.integers(0, 2**256 - 1), st.integers(0, 2**256 - 1), st.integers(0, 2**256 - 1),
    st.integers(0, 2**64 - 1),
)
escrows = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())


@settings(max_examples=300, deadline=None)
@given(receipt=receipts, chain_id=st.integers(1, 2**64 - 1), escrow=escrows)
def test_the_raw_word_receipt_message_equals_the_generic_typed_data_encoding(receipt, chain_id, escrow):
    expected = encode_typed_data(domain(chain_id, escrow), RECEIPT_TYPES, receipt.as_message())
    assert signable_message(receipt, chain_id, escrow) == expected
    assert receipt_digest(receipt, chain_id, escrow) == keccak(b"\x19" + expected.version + expected.header + expected.body)


@settings(max_examples=100, deadline=None)
@given(receipt=receipts, key=st.integers(1, SECP256K1_N - 1))
def test_the_key_signer_signs_exactly_as_eth_account_and_recovers_its_address(receipt, key):
    private_key = key.to_bytes(32, "big")
    signer = KeySigner(private_key)
    signature = signer.sign_receipt(receipt, 31337, ESCROW)
    assert signature == sign(private_key, receipt, 31337, ESCROW)  # RFC 6979: deterministic
    assert signer.address == Account.from_key(private_key).address
    assert recover_valid_signer(receipt, signature, 31337, ESCROW) == signer.address


def test_an_attestation_signed_by_a_key_signer_recovers_through_eth_account():
    signer = KeySigner(Account.create().key)
    att = Attestation(2**250 + 3, 1, 2, b"\x01" * 32, b"\x02" * 32)
    signature = signer.sign_attestation(att, 31337, ESCROW)
    assert recover_signer(att, signature, 31337, ESCROW) == signer.address
    message = attestation_message(att, 31337, ESCROW)
    assert attestation_digest(att, 31337, ESCROW) == keccak(b"\x19" + message.version + message.header + message.body)


def test_recovery_refuses_what_the_escrow_refuses():
    signer = KeySigner(Account.create().key)
    digest = keccak(b"a receipt")
    signature = signer.sign_digest(digest)
    assert recover_digest_signer(digest, signature) == signer.address

    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    high_s_twin = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # same key, malleable
    assert Account._recover_hash(digest, signature=high_s_twin) == signer.address  # eth_account takes it
    assert recover_digest_signer(digest, high_s_twin) is None  # OpenZeppelin's ECDSA does not
    assert recover_digest_signer(digest, signature[:64]) is None  # 64-byte compact form
    assert recover_digest_signer(digest, signature[:64] + b"\x01") is None  # v must be 27 or 28
    assert recover_digest_signer(digest, b"\0" * 65) is None
    assert recover_digest_signer(keccak(b"another receipt"), signature) != signer.address


def test_the_call_id_names_the_exact_receipt():
    receipt = Receipt(Account.create().address, Account.create().address, 1, 5, 5 * 10**15, 2**40)
    assert receipt_call_id(receipt, 31337, ESCROW) == int.from_bytes(receipt_digest(receipt, 31337, ESCROW), "big")
    assert receipt_call_id(receipt.next(10**15, 2**40), 31337, ESCROW) != receipt_call_id(receipt, 31337, ESCROW)


def test_receipts_round_trip_through_json_with_totals_as_decimal_strings():
    receipt = Receipt(Account.create().address, Account.create().address, 3, 2**70, 2**200, 2**63)
    data = receipt.as_json()
    assert data["calls"] == str(2**70) and data["amount"] == str(2**200)
    assert Receipt.from_json(data) == receipt


@pytest.mark.parametrize(
    "field, value",
    [("calls", "-1"), ("amount", str(2**256)), ("deadline", 2**64), ("modelId", "seven"), ("caller", "0x1234")],
)
def test_malformed_receipt_fields_are_refused(field, value):
    data = Receipt(Account.create().address, Account.create().address, 3, 1, 1, 1).as_json()
    data[field] = value
    with pytest.raises((ValueError, TypeError)):
        Receipt.from_json(data)
