"""`modelhub dispute` as a user runs it, on an anvil of the module's own: a lie on chain caught by
`infer --spot-check` and challenged by itself, drawn, voted on (jurors played with cast),
resolved and paid out; refusals as one line that spends nothing; fast calls kept by `infer
--fast`, challenged from the kept call and, for those a spot check found wrong, by `open
--waiting` once settled (a relayer process whose answers test code rewrites)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelhub.codec import encode_output
from modelhub.devchain import rpc
from modelhub.relayer_client import post_artifact
from modelhub.typed_data import vote_commitment

from tests.cli.test_cli import (  # the module's anvil, deployment and subprocess helpers
    ADDRESSES,
    BROKE,
    CALLER,
    IRIS,
    IRIS_INPUT,
    IRIS_INPUT_BYTES,
    KEYS,
    RELAYER,
    TOKEN,
    StandInRelayer,
    _infer_in_background,
    _serve,
    cast,
    cast_send,
    fails,
    hub_env,  # noqa: F401  (a fixture)
    iris_model,  # noqa: F401  (a fixture)
    modelhub,
    ok_json,
)
from tests.support.lies import RewritingRelayer, another_label
from tests.support.relayers import RelayerProcess

JURORS = (0, 6, 7, 9)  # TEST::<n> accounts bonded as the jury pool
FAST_CALLER, FAST_RELAYER = 4, 8
BOND = 10 * TOKEN  # the deploy script's default challenge bond
LIE = {"label": [2], "probabilities": [{"0": 0.1, "1": 0.2, "2": 0.7}]}


def bond(hub_env, who: int, amount: int, signature: str, *args: str) -> None:
    """Mints `amount` to TEST::<who> and bonds it with RelayerRegistry's `signature`(*args, amount)."""
    deployment = hub_env["deployment"]
    cast_send(hub_env, who, deployment["token"], "mint(address,uint256)", ADDRESSES[who], str(amount))
    cast_send(hub_env, who, deployment["token"], "approve(address,uint256)", deployment["RelayerRegistry"], str(amount))
    cast_send(hub_env, who, deployment["RelayerRegistry"], signature, *args, str(amount))


def register_relayer(hub_env, who: int, endpoint: str) -> None:
    bond(hub_env, who, 100 * TOKEN, "register(string,uint256)", endpoint)


def nonce(hub_env, who: int) -> int:
    return int(cast(hub_env, "nonce", ADDRESSES[who]))


def lie_on_chain(hub_env, stand_in, model_id: int, *extra: str) -> tuple[int, str, str]:
    """A call of TEST::2 designated to TEST::3, which settles it with LIE and delivers LIE;
    returns (request id, the command's stdout and stderr)."""
    process, request_id = _infer_in_background(hub_env, model_id, "--relayer", stand_in.url, *extra)
    _serve(hub_env, stand_in, model_id, request_id, LIE, LIE)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stdout + stderr
    return request_id, stdout, stderr


@pytest.fixture(scope="module")
def liar(hub_env) -> Iterator[StandInRelayer]:
    """TEST::3, a relayer whose endpoint is a stand-in (test code settles its calls), and four
    bonded relayers as the jury pool; TEST::2 holds fee tokens for challenge bonds."""
    stand_in = StandInRelayer()
    register_relayer(hub_env, RELAYER, stand_in.url)
    for juror in JURORS:
        register_relayer(hub_env, juror, "http://127.0.0.1:9")
    cast_send(hub_env, CALLER, hub_env["deployment"]["token"], "mint(address,uint256)", ADDRESSES[CALLER],
              str(3 * BOND))
    yield stand_in
    stand_in.close()


# ---------------------------------------------------------------- a lie on chain, start to end


def test_a_spot_check_catches_a_lie_on_chain_and_the_dispute_runs_to_its_payouts(hub_env, iris_model, liar):
    request_id, stdout, stderr = lie_on_chain(hub_env, liar, iris_model, "--spot-check", "1")
    assert json.loads(stdout) == LIE  # the output is printed as delivered, with a warning
    assert ("Warning: spot check: the attested output is WRONG (label[0] is 2; the model gives 0); challenged "
            "in dispute 1: `modelhub dispute status 1`") in stderr

    fails(modelhub(hub_env, "dispute", "draw", "1"), 1, "can be drawn from block", "try again in")
    rpc(hub_env["url"], "anvil_mine", hex(5))
    drawn = ok_json(modelhub(hub_env, "dispute", "draw", "1", "--json", account=BROKE))  # anyone may draw
    assert drawn["phase"] == "voting" and sorted(drawn["jurors"]) == sorted(ADDRESSES[j] for j in JURORS)

    salt = bytes(range(32))
    court = hub_env["deployment"]["DisputeCourt"]
    for juror in JURORS:
        commitment = vote_commitment(1, ADDRESSES[juror], 2, salt)
        cast_send(hub_env, juror, court, "commitVote(uint256,bytes32)", "1", "0x" + commitment.hex())
    human = modelhub(hub_env, "dispute", "status", "1")
    assert human.returncode == 0, human.stderr
    for phrase in (f"request {request_id} (on chain)", f"accused     {ADDRESSES[RELAYER]}",
                   f"challenger  {ADDRESSES[CALLER]}, bond 10 tOPG", "refunded 0.001 tOPG", "voting", "4 of 5 seats",
                   "committed, not revealed", "0 revealed", "commit their votes"):
        assert phrase in human.stdout, human.stdout
    assert re.search(r"reveals +until .* \(in 1 h 5\d min\)", human.stdout), human.stdout

    hub_env["anvil"].advance_time(3601)
    for juror in JURORS:
        cast_send(hub_env, juror, court, "revealVote(uint256,uint8,bytes32)", "1", "2", "0x" + salt.hex())
    # Every juror revealed: no need to wait for the reveal deadline.
    resolved = ok_json(modelhub(hub_env, "dispute", "resolve", "1", "--json"))
    assert (resolved["outcome"], resolved["votesWrong"], resolved["votesMatch"]) == ("output_wrong", 4, 0)
    # TEST::2 was the caller and the challenger: its refund, its bond back and the reward.
    claimed = ok_json(modelhub(hub_env, "dispute", "claim", "--json", account=CALLER))
    assert claimed["claimed"] == str(TOKEN // 1000 + BOND + 10 * TOKEN)
    again = modelhub(hub_env, "dispute", "claim", account=CALLER)
    assert again.returncode == 0 and "owes" in again.stdout and "nothing" in again.stdout
    mine = ok_json(modelhub(hub_env, "dispute", "list", "--json", account=CALLER))["disputes"]
    assert [(d["disputeId"], d["roles"], d["outcome"]) for d in mine] == [(1, ["challenger", "caller"], "output_wrong")]


# ---------------------------------------------------------------- refusals


def test_refused_challenges_are_one_line_and_spend_nothing(hub_env, iris_model, liar, tmp_path):
    # Slashed below the minimum bond by the first dispute, the liar bonds more to serve again.
    bond(hub_env, RELAYER, 6 * BOND, "addBond(uint256)")
    request_id, stdout, _ = lie_on_chain(hub_env, liar, iris_model, "--spot-check", "0", "--json")
    assert json.loads(stdout)["spotCheck"] == {"checked": False}
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"output": {"label": [0]}}))
    fails(modelhub(hub_env, "dispute", "open", str(request_id), "--output", str(wrong), account=CALLER), 1,
          "hashes to 0x", "not to the output hash", f"modelhub output {request_id}")
    broke = nonce(hub_env, BROKE)
    fails(modelhub(hub_env, "dispute", "open", str(request_id), account=BROKE), 1,
          "holds 0 tOPG", "challenge bond 10 tOPG", "modelhub faucet")
    assert nonce(hub_env, BROKE) == broke  # nothing was sent, not even an approval

    # By the relayer's own output, fetched from its endpoint and checked against the chain.
    opened = ok_json(modelhub(hub_env, "dispute", "open", str(request_id), "--json", account=CALLER))
    assert (opened["requestId"], opened["accused"], opened["bond"]) == (str(request_id), ADDRESSES[RELAYER], str(BOND))
    sent = nonce(hub_env, CALLER)
    fails(modelhub(hub_env, "dispute", "open", str(request_id), account=CALLER), 1,
          f"already disputed in dispute {opened['disputeId']}")
    assert nonce(hub_env, CALLER) == sent

    escrow = hub_env["deployment"]["InferenceEscrow"]
    pending = int(cast(hub_env, "call", escrow, "nextRequestId(address)(uint256)", ADDRESSES[CALLER]).split()[0])
    cast_send(hub_env, CALLER, escrow, "requestInferenceVia(uint256,uint32,bytes,uint256,address)",
              str(iris_model), "0", "0x" + IRIS_INPUT_BYTES.hex(), str(TOKEN), ADDRESSES[RELAYER])
    fails(modelhub(hub_env, "dispute", "open", str(pending), account=CALLER), 1, "has not settled (pending)")
    fails(modelhub(hub_env, "dispute", "open", "999", account=CALLER), 1, "no request has id",
          "the id `modelhub infer` printed")
    fails(modelhub(hub_env, "dispute", "open", "--fast", "0xabc123", account=CALLER), 1,
          "no fast call with id 0xabc123", "infer --fast")
    fails(modelhub(hub_env, "dispute", "status", "99"), 1, "no dispute has id 99", "dispute list")
    assert nonce(hub_env, CALLER) == sent + 1  # only the request above

    assert modelhub(hub_env, "dispute", "open", "5", "--fast", "0x12").returncode == 2

    old = json.loads((hub_env["folder"] / "31337.json").read_text())
    old.pop("DisputeCourt")
    (tmp_path / "31337.json").write_text(json.dumps(old))
    fails(modelhub(hub_env, "dispute", "open", str(request_id), "--deployment", str(tmp_path / "31337.json")), 1,
          "no dispute court")


# ---------------------------------------------------------------- fast calls


@pytest.fixture(scope="module")
def fast_liar(hub_env, iris_model, tmp_path_factory) -> Iterator[RewritingRelayer]:  # noqa: F811
    """TEST::8 running `modelhub relayer run` (settling every 10 minutes: test code settles),
    behind a stand-in that rewrites its answers while told to; the iris model's file at it;
    TEST::4 with 1 tOPG credit and fee tokens for two challenge bonds."""
    folder = tmp_path_factory.mktemp("fast-relayer")
    process = RelayerProcess(hub_env["url"], f"TEST::{FAST_RELAYER}", folder / "store", hub_env["folder"],
                             "--settle-interval", "600")
    register_relayer(hub_env, FAST_RELAYER, process.url)
    process.start()
    proxy = RewritingRelayer(process.url, KEYS[FAST_RELAYER], 31337, hub_env["deployment"]["InferenceEscrow"])
    post_artifact(process.url, IRIS.read_bytes())
    deployment = hub_env["deployment"]
    cast_send(hub_env, FAST_CALLER, deployment["token"], "mint(address,uint256)", ADDRESSES[FAST_CALLER],
              str(TOKEN + 2 * BOND))
    cast_send(hub_env, FAST_CALLER, deployment["token"], "approve(address,uint256)", deployment["InferenceEscrow"],
              str(TOKEN))
    cast_send(hub_env, FAST_CALLER, deployment["InferenceEscrow"], "deposit(uint256)", str(TOKEN))
    yield proxy
    proxy.close()
    process.kill()


def fast(hub_env, proxy, *extra: str):
    """`modelhub infer 1 --fast` as TEST::4, at the relayer behind `proxy`."""
    return modelhub(hub_env, "infer", "1", "--input", IRIS_INPUT, "--fast", "--relayer", proxy.url, *extra,
                    account=FAST_CALLER)


def settle_newest(hub_env, folder: Path) -> None:
    """Settles the newest receipt kept in `folder` as its relayer would (and so every call
    before it: receipts are cumulative)."""
    kept = max((json.loads(path.read_text()) for path in folder.rglob("*.json")),
               key=lambda kept: int(kept["receipt"]["calls"]))
    r = kept["receipt"]
    cast_send(hub_env, FAST_RELAYER, hub_env["deployment"]["InferenceEscrow"],
              "settleReceipts((address,address,uint256,uint256,uint256,uint64)[],bytes[])",
              f"[({r['caller']},{r['relayer']},{r['modelId']},{r['calls']},{r['amount']},{r['deadline']})]",
              f"[{kept['receiptSignature']}]")


def test_fast_calls_are_kept_and_challenged_from_the_kept_call_or_once_a_spot_check_found_them_wrong(
        hub_env, fast_liar, tmp_path):
    proxy = fast_liar
    honest = ok_json(fast(hub_env, proxy, "--spot-check", "1", "--json"))
    assert honest["spotCheck"] == {"calls": 1, "checked": 1, "matched": 1, "wrong": 0, "noVerdict": 0,
                                   "disputed": 0, "waiting": 0, "problems": []}
    kept = json.loads(Path(honest["kept"]).read_text())
    assert kept["callId"] == f"0x{int(honest['callId']):064x}"
    assert kept["output"] == encode_output(honest["output"]).decode()

    proxy.lie = another_label
    lie = ok_json(fast(hub_env, proxy, "--keep", str(tmp_path / "lie.json"), "--json"))
    assert "spotCheck" not in lie and lie["keptFile"] == str(tmp_path / "lie.json")
    found = fast(hub_env, proxy, "--spot-check", "1")
    proxy.lie = None
    assert found.returncode == 0, found.stderr
    assert "Warning: Spot checks (share 1): 1 of 1 calls re-run locally: 0 match, 1 wrong" in found.stderr
    assert "modelhub dispute open --waiting" in found.stderr and "Kept for a challenge: call 0x" in found.stderr

    fails(modelhub(hub_env, "dispute", "open", "--fast", str(tmp_path / "lie.json"), account=FAST_CALLER), 1,
          "pays 2 calls but its channel has settled 0", "once its receipt is settled")
    tampered = json.loads((tmp_path / "lie.json").read_text())
    tampered["output"] = kept["output"]  # the honest output, under the lie's attestation
    (tmp_path / "tampered.json").write_text(json.dumps(tampered))
    before = nonce(hub_env, FAST_CALLER)
    fails(modelhub(hub_env, "dispute", "open", "--fast", str(tmp_path / "tampered.json"), account=FAST_CALLER), 1,
          "cannot be challenged: its output bytes do not hash to the attested output hash")
    assert nonce(hub_env, FAST_CALLER) == before

    settle_newest(hub_env, Path(honest["kept"]).parent)
    by_file = ok_json(modelhub(hub_env, "dispute", "open", "--fast", str(tmp_path / "lie.json"), "--json",
                               account=FAST_CALLER))
    assert by_file["accused"] == ADDRESSES[FAST_RELAYER] and by_file["requestId"] == lie["callId"]
    opened = ok_json(modelhub(hub_env, "dispute", "open", "--waiting", "--json", account=FAST_CALLER))
    assert len(opened["opened"]) == 1 and opened["waiting"] == []
    none_left = modelhub(hub_env, "dispute", "open", "--waiting", account=FAST_CALLER)
    assert none_left.returncode == 0 and "No wrong fast calls" in none_left.stdout
    status = ok_json(modelhub(hub_env, "dispute", "status", str(opened["opened"][0]["disputeId"]), "--json"))
    assert (status["kind"], status["accused"], status["caller"]) == ("fast", ADDRESSES[FAST_RELAYER],
                                                                     ADDRESSES[FAST_CALLER])
    # The honest call: the window of its channel runs from its last settlement, a day.
    hub_env["anvil"].advance_time(86_400 + 1)
    fails(modelhub(hub_env, "dispute", "open", "--fast", honest["callId"], account=FAST_CALLER), 1,
          "dispute window", "closed")
