"""The attestation message the relayer signs is exactly eth_account's EIP-712 encoding, and its
raw-word digest the digest of that encoding."""

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from modelhub.typed_data import ATTESTATION_TYPES, Attestation, Domain, digest, domain, recover_signer, signable_message
from modelhub.typed_data import sign as sign_attestation

hashes = st.binary(min_size=32, max_size=32)
attestations = st.builds(
    Attestation,
    request_id=st.integers(0, 2**256 - 1),
    model_id=st.integers(0, 2**256 - 1),
    version=st.integers(0, 2**32 - 1),
    input_hash=hashes,
    output_hash=hashes,
)
escrows = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())


@settings(max_examples=300, deadline=None)
@given(att=attestations, chain_id=st.integers(1, 2**64 - 1), escrow=escrows)
def test_the_raw_word_message_equals_the_generic_typed_data_encoding(att, chain_id, escrow):
    expected = encode_typed_data(domain(chain_id, escrow), ATTESTATION_TYPES, att.as_message())
    assert signable_message(att, chain_id, escrow) == expected
    generic_digest = keccak(b"\x19" + expected.version + expected.header + expected.body)
    assert digest(att, chain_id, escrow) == generic_digest
    assert Domain(chain_id, escrow).digest_of(Attestation.struct_type, att.as_tuple()) == generic_digest


def test_a_signature_recovers_its_signer_and_no_one_else_for_another_domain():
    account = Account.create()
    att = Attestation(7, 1, 2, b"\x01" * 32, b"\x02" * 32)
    escrow = "0x" + "ab" * 20
    signature = sign_attestation(account.key, att, 31337, escrow)
    assert recover_signer(att, signature, 31337, escrow) == account.address
    assert recover_signer(att, signature, 11155111, escrow) != account.address
    assert recover_signer(att, signature, 31337, "0x" + "cd" * 20) != account.address
