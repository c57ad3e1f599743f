"""Disputes judged by real relayer daemons: on a deployment with juries of 3, relayer processes
draw the jury, re-run the model, commit and reveal their votes, resolve and claim by themselves;
the test only makes the lie, opens the challenge through the SDK and moves the chain's clock.
A liar is slashed to the wei, a false challenge loses its bond, jurors killed with SIGKILL
around their commitment still commit and reveal exactly once, and an output within the looser
tolerance a version's content-addressed model card declares is judged the model's answer.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from eth_utils import keccak

from modelhub import codec
from modelhub.contracts import DisputeOutcome, DisputePhase
from modelhub.deployments import deploy, save_deployment
from modelhub.devchain import advance_time
from modelhub.hub import Hub
from modelhub.runtime import ModelRuntime
from modelhub.store import ModelStore, digest_to_cid, file_digest
from modelhub.typed_data import VOTE_OUTPUT_MATCHES, VOTE_OUTPUT_WRONG, Attestation, vote_commitment

from tests.conftest import PARAMS
from tests.support.relayers import ROOT, RelayerProcess, start_all, upload_registered, wait_until

IRIS = ROOT / "examples" / "iris" / "iris.onnx"
IRIS_INPUT = {"X": [[5.1, 3.5, 1.4, 0.2]]}  # a setosa: label 0
MADE_UP = b'{"label":[2],"probabilities":[{"0":0.01,"1":0.01,"2":0.98}]}'  # what the liar attests
DIABETES = ROOT / "examples" / "diabetes" / "diabetes.onnx"
DIABETES_INPUT = json.loads((ROOT / "examples" / "diabetes" / "input.json").read_text())
CARD = b'{"tolerance": {"progression": {"rtol": 0.01}}}'  # the regressor's model card
CARD_URI = "ipfs://" + digest_to_cid(file_digest(CARD))
PRICE = 10**15
TOKEN = 10**18
BOND = PARAMS.min_bond
JURORS = ("TEST::3", "TEST::7", "TEST::8")  # the juror daemons' accounts (accounts[3], [7], [8])
HONEST = "TEST::9"  # the relayer wrongly challenged, a daemon too


@pytest.fixture(scope="module")
def court3(deployer, treasury, tmp_path_factory):
    """A deployment of its own whose juries have 3 seats (the session's have 5), and the folder
    of its deployment file for the relayer processes."""
    deployment = deploy(deployer, treasury=treasury.address, params=replace(PARAMS, jury_size=3))
    folder = tmp_path_factory.mktemp("deployments-jury-3")
    save_deployment(deployment, folder)
    return deployment, folder


@pytest.fixture
def daemons(court3, chain, tmp_path):
    """daemons(*accounts) -> a relayer process for each TEST::n account, bonded with the endpoint
    it serves on (not started: start_all them). Killed after the test."""
    deployment, folder = court3
    made: list[RelayerProcess] = []

    def make(*accounts: str) -> list[RelayerProcess]:
        from ape import accounts as ape_accounts

        for alias in accounts:
            process = RelayerProcess(chain.provider.http_uri, alias, tmp_path / f"store-{alias[6:]}", folder)
            hub = Hub(deployment, ape_accounts.test_accounts[int(alias[6:])])
            hub.faucet(BOND)
            hub.relayer_register(process.url, BOND)
            made.append(process)
        return made[-len(accounts):]

    yield make
    for process in made:
        process.kill()


@pytest.fixture
def hubs(court3, uploader, caller, stranger):
    """The uploader's, the caller's (with credit and tokens for a challenge bond) and the liar's Hub."""
    deployment, _ = court3
    caller_hub = Hub(deployment, caller)
    caller_hub.faucet(20 * TOKEN)
    caller_hub.deposit(TOKEN)
    return Hub(deployment, uploader), caller_hub, Hub(deployment, stranger)


def test_a_liar_is_slashed_by_a_jury_of_daemons_that_survive_sigkill(daemons, hubs, chain, treasury):
    uploader_hub, caller_hub, liar_hub = hubs
    liar_hub.faucet(BOND)
    liar_hub.relayer_register("http://127.0.0.1:9", BOND)  # no daemon: it lies in this test's code
    first, second, third = start_all(daemons(*JURORS))
    model_id = upload_registered(uploader_hub, first.url, IRIS, "iris", PRICE)  # the others fetch it from first

    # Designated to the liar: no honest daemon serves it first.
    request = caller_hub.request(model_id, IRIS_INPUT, relayer=liar_hub.address)
    call = caller_hub.requested_call(request.id)
    lie = Attestation(request.id, model_id, call.version, keccak(call.input), keccak(MADE_UP))
    liar_hub.fulfill(lie, liar_hub.sign_attestation(lie))

    # `first` cannot pay for gas: it stores its vote and salt and then fails to send the
    # commitment, as a daemon killed between the two would.
    chain.provider.set_balance(address_of(first), 0)
    case = caller_hub.challenge_request(request.id, output=MADE_UP)
    dispute_id = case.dispute_id
    chain.mine(case.draw_block - chain.blocks.head.number)  # to the draw block: the daemons draw
    jurors = wait_until(lambda: caller_hub.get_dispute(dispute_id).jurors, timeout=60, what="the jury's draw")
    assert set(jurors) == {address_of(p) for p in (first, second, third)}  # all but the liar

    wait_until(lambda: all(caller_hub.ballot(dispute_id, address_of(p)).commitment != bytes(32)
                           for p in (second, third)), what="the second and third jurors' commitments")
    part, vote, salt = wait_until(lambda: _stored_vote(first, dispute_id), what="the first juror's stored vote")
    assert (part, vote) == ("voted", VOTE_OUTPUT_WRONG)
    assert caller_hub.ballot(dispute_id, address_of(first)).commitment == bytes(32)  # nothing landed

    first.kill()  # between the stored salt and a commitment that never left
    second.kill()  # after its commitment landed, before its reveal
    chain.provider.set_balance(address_of(first), 10**20)
    start_all([first, second])  # the same stores: where the first juror's salt is

    expected = vote_commitment(dispute_id, address_of(first), VOTE_OUTPUT_WRONG, salt)
    wait_until(lambda: caller_hub.ballot(dispute_id, address_of(first)).commitment == expected,
               what="the restarted first juror to commit the vote it stored before the crash")
    dispute = caller_hub.get_dispute(dispute_id)
    advance_time(chain.provider.http_uri, dispute.commit_deadline + 1 - chain.blocks.head.timestamp)

    # Every juror revealed: the daemons resolve at once, then claim.
    resolved = wait_until(lambda: _resolved(caller_hub, dispute_id), timeout=60, what="the resolution")
    assert (resolved.outcome, resolved.votes_wrong, resolved.votes_match) == (DisputeOutcome.OUTPUT_WRONG, 3, 0)
    for process in (first, second, third):
        wait_until(lambda: caller_hub.dispute_claimable(address_of(process)) == 0, what="the jurors' claims")
    assert second.metric("modelhub_juror_commits_total") == 0  # its commitment had landed before the kill
    assert second.metric("modelhub_juror_reveals_total") == 1
    assert first.metric("modelhub_juror_commits_total") == 1 and first.metric("modelhub_juror_reveals_total") == 1
    for process in (first, second, third):
        assert process.disputes()[dispute_id][0] == "revealed"
        assert caller_hub.ballot(dispute_id, address_of(process)).vote == VOTE_OUTPUT_WRONG

    terms = caller_hub.dispute_terms()
    assert liar_hub.relayer_info().bond == BOND - terms.slash_amount - PRICE
    assert caller_hub.dispute_claimable() == PRICE + terms.challenge_bond + terms.challenger_reward
    assert caller_hub.claim_dispute_payouts() == PRICE + terms.challenge_bond + terms.challenger_reward
    assert caller_hub.dispute_claimable(treasury) == terms.slash_amount - terms.challenger_reward - terms.juror_reward
    _assert_shares(caller_hub, jurors, terms.juror_reward)


def test_a_false_challenge_of_an_honest_daemons_call_loses_its_bond(daemons, hubs, chain):
    uploader_hub, caller_hub, _ = hubs
    honest, *jurors = start_all(daemons(HONEST, *JURORS))
    model_id = upload_registered(uploader_hub, honest.url, IRIS, "iris", PRICE)
    served = caller_hub.infer(model_id, IRIS_INPUT, relayer=address_of(honest), relayer_url=honest.url,
                              timeout=60, poll=0.2)
    tokens = caller_hub.token_balance()

    case = caller_hub.challenge_request(served.request_id)  # the output as the honest relayer serves it
    resolved = _judged_by(jurors, caller_hub, chain, case.dispute_id)
    drawn = resolved.jurors
    assert (resolved.outcome, resolved.votes_match, resolved.votes_wrong) == (DisputeOutcome.OUTPUT_RIGHT, 3, 0)
    assert all(p.disputes()[case.dispute_id][1] == VOTE_OUTPUT_MATCHES for p in jurors)
    terms = caller_hub.dispute_terms()
    # The accused's daemon claims its award by itself; its bond is whole.
    wait_until(lambda: caller_hub.token_balance(address_of(honest)) == terms.challenge_bond - terms.juror_reward,
               what="the accused's daemon to claim its award")
    assert caller_hub.relayer_info(address_of(honest)).bond == BOND
    for process in jurors:
        wait_until(lambda: caller_hub.dispute_claimable(address_of(process)) == 0, what="the jurors' claims")
    _assert_shares(caller_hub, list(drawn), terms.juror_reward)
    assert caller_hub.dispute_claimable() == 0
    assert caller_hub.token_balance() == tokens - terms.challenge_bond  # the bond is lost


def test_a_looser_tolerance_its_content_addressed_card_declares_is_honoured_by_the_jury(daemons, hubs, chain):
    uploader_hub, caller_hub, relayer_hub = hubs
    relayer_hub.faucet(BOND)
    relayer_hub.relayer_register("http://127.0.0.1:9", BOND)  # no daemon: its CPU "rounds otherwise" in this code
    # Two juror daemons: the jury of 3 sits with the 2 the pool has besides the accused.
    first, second = start_all(daemons(*JURORS[:2]))
    # The card is registered by its content id and stored at a relayer with the file.
    model_id = uploader_hub.upload_model(DIABETES, "diabetes", PRICE, card=CARD, relayer_url=first.url).model_id
    assert uploader_hub.get_model(model_id).metadata_uri == CARD_URI

    request = caller_hub.request(model_id, DIABETES_INPUT, relayer=relayer_hub.address)
    call = caller_hub.requested_call(request.id)
    output = _off_by(1e-3)  # ten times the default rtol, a tenth of the card's
    attested = Attestation(request.id, model_id, call.version, keccak(call.input), keccak(output))
    relayer_hub.fulfill(attested, relayer_hub.sign_attestation(attested))
    case = caller_hub.challenge_request(request.id, output=output)
    resolved = _judged_by([first, second], caller_hub, chain, case.dispute_id)
    assert (resolved.outcome, resolved.votes_match, resolved.votes_wrong) == (DisputeOutcome.OUTPUT_RIGHT, 2, 0)
    assert relayer_hub.relayer_info().bond == BOND
    card_cid = CARD_URI.removeprefix("ipfs://")
    assert f"fetched the file {card_cid} from {first.url}" in second.log()  # checked against its CID
    for process in (first, second):
        assert "judged with the tolerance it declares for progression (atol 1e-05, rtol 0.01)" in process.log()


# ---------------------------------------------------------------- helpers


def address_of(process: RelayerProcess) -> str:
    """The address of a daemon's TEST::n account."""
    from ape import accounts

    return accounts.test_accounts[int(process.account[6:])].address


def _stored_vote(process: RelayerProcess, dispute_id: int):
    row = process.disputes().get(dispute_id)
    return row if row and row[0] == "voted" else None


def _off_by(share: float) -> bytes:
    """The diabetes model's output on DIABETES_INPUT, re-run here, with every float moved by
    `share` of itself: what a relayer whose CPU rounds otherwise might attest."""
    store = ModelStore(Path(tempfile.mkdtemp()) / "store")
    digest = store.put(DIABETES.read_bytes()).digest
    outputs = ModelRuntime(store=store).run(digest, codec.decode_input(json.dumps(DIABETES_INPUT).encode()))
    return json.dumps({name: [[value * (1 + share) for value in row] for row in rows]
                       for name, rows in outputs.items()}).encode()


def _judged_by(processes: list[RelayerProcess], hub: Hub, chain, dispute_id: int):
    """The dispute once the juror daemons `processes` (all of the pool but the parties) drew its
    jury, committed, revealed after the test moved the clock past the commit deadline, and resolved."""
    chain.mine(hub.get_dispute(dispute_id).draw_block - chain.blocks.head.number)
    jurors = wait_until(lambda: hub.get_dispute(dispute_id).jurors, timeout=60, what="the jury's draw")
    assert set(jurors) == {address_of(p) for p in processes}
    wait_until(lambda: all(hub.ballot(dispute_id, juror).commitment != bytes(32) for juror in jurors),
               what="the jurors' commitments")
    dispute = hub.get_dispute(dispute_id)
    advance_time(chain.provider.http_uri, dispute.commit_deadline + 1 - chain.blocks.head.timestamp)
    return wait_until(lambda: _resolved(hub, dispute_id), timeout=60, what="the resolution")


def _resolved(hub: Hub, dispute_id: int):
    info = hub.get_dispute(dispute_id)
    return info if info.phase is DisputePhase.RESOLVED else None


def _assert_shares(hub: Hub, jurors: list[str], pool: int) -> None:
    """Each juror of the majority (all, here) claimed its equal share of `pool`, rounded down; the
    first in draw order the remainder too. They held no tokens before (their bonds took them)."""
    share = pool // len(jurors)
    expected = [pool - share * (len(jurors) - 1)] + [share] * (len(jurors) - 1)
    assert [hub.token_balance(juror) for juror in jurors] == expected
