"""The typed-data definitions: each struct's type string is the public interface's, and a third,
independent encoder (the `eip712` package's EIP712Message) computes the same messages."""

from eip712.messages import EIP712Domain, EIP712Message
from eth_pydantic_types import abi
from hypothesis import given, settings
from hypothesis import strategies as st

from modelhub import typed_data
from modelhub.typed_data import ATTESTATION, RECEIPT, Domain, signable_message

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
uint256 = st.integers(0, 2**256 - 1)


# Named as the structs: EIP712Message takes the type's name from the class's.
class Receipt(EIP712Message):
    caller: abi.address
    relayer: abi.address
    modelId: abi.uint256
    calls: abi.uint256
    amount: abi.uint256
    deadline: abi.uint64


class Attestation(EIP712Message):
    requestId: abi.uint256
    modelId: abi.uint256
    version: abi.uint32
    inputHash: abi.bytes32
    outputHash: abi.bytes32


def test_the_struct_types_are_the_ones_the_escrow_hashes():
    assert ATTESTATION.encode_type == (
        "Attestation(uint256 requestId,uint256 modelId,uint32 version,bytes32 inputHash,bytes32 outputHash)")
    assert RECEIPT.encode_type == (
        "Receipt(address caller,address relayer,uint256 modelId,uint256 calls,uint256 amount,uint64 deadline)")


@settings(max_examples=50, deadline=None)
@given(caller=addresses, relayer=addresses, numbers=st.tuples(uint256, uint256, uint256, st.integers(0, 2**64 - 1)),
       att=st.tuples(uint256, uint256, st.integers(0, 2**32 - 1), st.binary(min_size=32, max_size=32),
                     st.binary(min_size=32, max_size=32)),
       chain_id=st.integers(1, 2**64 - 1), escrow=addresses)
def test_the_eip712_package_encodes_receipts_and_attestations_alike(caller, relayer, numbers, att, chain_id, escrow):
    domain = Domain(chain_id, escrow)
    eip712_domain = EIP712Domain(**domain.as_dict())
    receipt = typed_data.Receipt.from_json({"caller": caller, "relayer": relayer, "modelId": numbers[0], "calls": numbers[1],
                                 "amount": numbers[2], "deadline": numbers[3]})
    attestation = typed_data.Attestation(*att)
    for ours, theirs in ((receipt, Receipt), (attestation, Attestation)):
        expected = theirs(**ours.as_message(), eip712_domain=eip712_domain).signable_message
        assert signable_message(ours, chain_id, escrow) == expected
        assert domain.signable_message(ours) == expected
    # The relayer's hot path hashes lowercase addresses from the request body, without a Receipt.
    assert domain.digest_of(RECEIPT, (caller.lower(), relayer.lower(), *numbers)) == domain.digest(receipt)
