"""Spot checks with the real iris model on the test chain: a caller re-runs its calls locally and
judges them by the jurors' rule. An honest relayer process's answers pass (also when a float
differs in its last digits); an answer test code rewrites and signs with the relayer's key is
caught and challenged by itself: a call on chain at once, a fast call once its receipt settled
(also by a later session, from the kept call). Kept calls that were tampered with are refused
before anything is sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_utils import keccak

from modelhub import errors as e
from modelhub.challenges import challenge_kept
from modelhub.codec import encode_output
from modelhub.contracts import DisputePhase
from modelhub.hub import Hub
from modelhub.kept import KeptCall, KeptCallError, KeptCalls
from modelhub.spotcheck import SpotChecker
from modelhub.typed_data import Attestation

from tests.conftest import PARAMS
from tests.sdk.test_session import settling_relayer  # noqa: F401 (a fixture)
from tests.support.lies import RewritingRelayer, another_label, nudged
from tests.support.relayers import RelayerProcess, wait_until
from tests.support.sdk import IRIS, IRIS_INPUT, PRICE

TOKEN = 10**18
OTHER_INPUTS = [{"X": [[6.7, 3.0, 5.2, 2.3]]}, {"X": [[5.9, 3.0, 4.2, 1.5]]}]


@pytest.fixture
def liar(settling_relayer: RelayerProcess, relayer, deployment) -> Iterator[RewritingRelayer]:  # noqa: F811
    proxy = RewritingRelayer(settling_relayer.url, relayer.private_key, deployment.chain_id,
                             deployment.inference_escrow)
    yield proxy
    proxy.close()


@pytest.fixture
def iris_model(uploader_hub: Hub, settling_relayer: RelayerProcess) -> int:  # noqa: F811
    return uploader_hub.upload_model(IRIS, "iris", PRICE, relayer_url=settling_relayer.url).model_id


@pytest.fixture
def challenger(caller_hub: Hub) -> Hub:
    """The caller with credit for many calls and fee tokens for one challenge bond."""
    caller_hub.faucet(TOKEN + PARAMS.challenge_bond)
    caller_hub.deposit(TOKEN)
    return caller_hub


# ---------------------------------------------------------------- fast calls


def test_fast_calls_pass_honest_answers_and_a_lie_is_challenged_once_its_receipt_settled(
        iris_model, liar, challenger, relayer, tmp_path):
    kept = KeptCalls.of(challenger, tmp_path / "kept")
    with challenger.fast_session(iris_model, relayer=liar.url, spot_check=1.0, keep=kept) as session:
        for inputs in [IRIS_INPUT, *OTHER_INPUTS]:
            check = session.infer(inputs).spot_check
            assert check.verdict.matches and check.verdict.reason == "the same canonical output bytes"
        liar.lie = nudged
        nudge = session.infer(IRIS_INPUT)
        assert nudge.spot_check.verdict.matches and "within the tolerance" in nudge.spot_check.verdict.reason

        liar.lie = another_label
        lie = session.infer(IRIS_INPUT)
        check = lie.spot_check
        assert check.wrong and check.waiting and check.dispute is None
        assert check.verdict.reason.startswith("label[0] is")
        assert [k.call_id for k in kept.pending(challenger.address)] == [lie.call_id]
        liar.lie = None

        # The relayer settles every second; the court takes the challenge from then on.
        cases = session.challenge_waiting(timeout=30)
    assert len(cases) == 1
    case = cases[0]
    assert (case.request_id, case.accused, case.challenger, case.caller) == (
        lie.call_id, relayer.address, challenger.address, challenger.address)
    assert (case.input, case.output, case.refund) == (lie.input_bytes, lie.output_bytes, PRICE)
    assert challenger.get_dispute(case.dispute_id).phase is DisputePhase.AWAITING_DRAW
    counts = session.spot_checks.counts
    assert (counts.calls, counts.checked, counts.matched, counts.wrong, counts.disputed, counts.waiting) == (
        5, 5, 4, 1, 1, 0)
    # Every call is kept, the challenged one with its dispute; none waits any more.
    assert len(list(kept)) == 5 and kept.pending() == []
    assert KeptCall.read(kept.path(lie.call_id)).dispute_id == case.dispute_id


def test_a_lie_left_waiting_is_challenged_by_a_later_session_of_the_channel(
        iris_model, liar, caller_hub, relayer, tmp_path):
    caller_hub.faucet(TOKEN)
    caller_hub.deposit(TOKEN)  # credit for calls, but no tokens left for a challenge bond
    kept = KeptCalls.of(caller_hub, tmp_path / "kept")
    liar.lie = another_label
    with caller_hub.fast_session(iris_model, relayer=liar.url, spot_check=1.0, keep=kept) as session:
        lie = session.infer(IRIS_INPUT)
        liar.lie = None
        session.infer(IRIS_INPUT)
        wait_until(lambda: caller_hub.channel(caller_hub.address, relayer, iris_model)[0] >= 2,
                   what="the relayer to settle the receipts")
        assert session.challenge_waiting() == []
        blocked = session.spot_checks.blocked[lie.call_id]
        assert isinstance(blocked, e.InsufficientTokenBalanceError) and "challenge bond" in str(blocked)
    assert [k.call_id for k in kept.pending()] == [lie.call_id]  # still kept, still wrong

    caller_hub.faucet(PARAMS.challenge_bond)
    # A later session of the channel takes the waiting call over, even checking nothing itself,
    # and challenges it before its first call: the channel has settled past it.
    with caller_hub.fast_session(iris_model, relayer=liar.url, spot_check=0.0, keep=kept) as later:
        assert [k.call_id for k in later.spot_checks.waiting] == [lie.call_id]
        assert later.infer(IRIS_INPUT).spot_check is None
        assert later.spot_checks.waiting == [] and later.spot_checks.counts.disputed == 1
    dispute_id = KeptCall.read(kept.path(lie.call_id)).dispute_id
    assert caller_hub.get_dispute(dispute_id).accused == relayer.address


def test_a_tampered_kept_call_is_refused_before_anything_is_sent(iris_model, liar, challenger, chain, tmp_path):
    kept = KeptCalls.of(challenger, tmp_path / "kept")
    with challenger.fast_session(iris_model, relayer=liar.url, keep=kept) as session:
        result = session.infer(IRIS_INPUT)
    original = KeptCall.read(kept.path(result.call_id))
    assert original.challenge_args() == (result.receipt, result.receipt_signature, result.attestation,
                                         result.signature, result.input_bytes, result.output_bytes)
    assert kept.find(original.call_hex[:12]) == original  # a prefix of the id is enough
    nonce = challenger.account.nonce
    tampered = {
        "its output bytes do not hash": original.with_changes(output=encode_output(another_label(result.outputs))),
        "its input bytes do not hash": original.with_changes(input=b'{"X":[[0,0,0,0]]}'),
        "not signed by the receipt's relayer": original.with_changes(attestation_signature=bytes(65)),
        "not of its receipt": original.with_changes(receipt=result.receipt.next(PRICE, result.receipt.deadline)),
    }
    for what, forged in tampered.items():
        with pytest.raises(KeptCallError, match=what):
            challenge_kept(challenger, KeptCall.from_json(forged.to_json()))
    assert challenger.account.nonce == nonce  # no approval, no challenge


# ---------------------------------------------------------------- calls on chain


def test_on_chain_calls_pass_an_honest_relayer_and_a_lie_is_challenged_at_once(
        iris_model, liar, challenger, hub_for, second_relayer, bond, deployment):
    checker = SpotChecker(challenger, 1.0)
    honest = challenger.infer(iris_model, IRIS_INPUT, spot_check=checker)  # served by the relayer process
    assert honest.spot_check.verdict.matches and honest.spot_check.dispute is None

    # A second relayer, played by test code, settles the call it is designated with a made-up
    # output, and delivers that output from its endpoint.
    bond(second_relayer, endpoint=liar.url)
    lying_hub = hub_for(second_relayer)

    def serve_a_lie(request) -> None:
        output = another_label(honest.outputs)
        att = Attestation(request.id, iris_model, request.version, request.input_hash, keccak(encode_output(output)))
        signature = lying_hub.sign_attestation(att)
        lying_hub.fulfill(att, signature)
        liar.answers[request.id] = liar.signed(att, output, signature)

    lie = challenger.infer(iris_model, IRIS_INPUT, relayer=second_relayer.address, on_requested=serve_a_lie,
                           spot_check=checker)
    check = lie.spot_check
    assert check.wrong and check.dispute is not None
    assert (check.dispute.request_id, check.dispute.accused, check.dispute.challenger) == (
        lie.request_id, second_relayer.address, challenger.address)
    assert check.dispute.output == lie.verified.output_bytes
    counts = checker.counts
    assert (counts.calls, counts.checked, counts.matched, counts.wrong, counts.disputed) == (2, 2, 1, 1, 1)
    assert challenger.token_balance() == 0  # the bond was posted
    # Checked or not, a share of 0 checks nothing, 1 everything.
    assert challenger.infer(iris_model, IRIS_INPUT, spot_check=0.0).spot_check is None
    with pytest.raises(ValueError, match="between 0 and 1"):
        SpotChecker(challenger, 1.5)
