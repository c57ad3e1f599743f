"""Model files a relayer lacks (issue 12), as the user met it: two real `modelhub relayer run`
processes on the test chain, only one holding the iris file. The other leaves the calls to it,
fetches the file from it (the endpoint it registered on chain), checks it against the digest
and serves; a source that serves another file or floods is never trusted; a call designated to
a relayer is rejected (reason 3) only when no source has the file; `modelhub models push` and
`modelhub models show` run as subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from modelhub.contracts import RELAYERS, RequestStatus
from modelhub.devchain import free_port
from modelhub.errors import RejectReason
from modelhub.hub import Hub
from modelhub.relayer.chain_follower import ChainFollower
from modelhub.relayer.peers import RelayerEndpoints
from modelhub.rpc import JsonRpc
from modelhub.store import digest_to_cid, file_digest

from tests.relayer.test_fast_calls import metrics
from tests.relayer.test_relayer_e2e import (  # noqa: F401 -- fixtures shared with the end-to-end tests
    caller_hub, parts, uploader_hub,
)
from tests.support.file_sources import FileSource
from tests.support.relayers import ROOT, upload_registered, wait_until

IRIS = ROOT / "examples" / "iris" / "iris.onnx"
DIABETES = ROOT / "examples" / "diabetes" / "diabetes.onnx"
IRIS_INPUT = {"X": [[5.1, 3.5, 1.4, 0.2]]}
IRIS_CID = digest_to_cid(file_digest(IRIS.read_bytes()))
PRICE = 10**15


@pytest.fixture(autouse=True)
def _relayer_accounts(accounts):
    RELAYER_ACCOUNTS[:] = [account.address for account in accounts[:8]]


RELAYER_ACCOUNTS: list[str] = []  # TEST::<n> is accounts[n]


@pytest.fixture
def registered_relayer(start_relayer, bond):
    """registered_relayer(account, *extra): bonds `account` (the `relayer` or `second_relayer`
    fixture) with the endpoint it will serve on (what other relayers fetch files from), then starts it."""

    def start(account, *extra: str):
        port = free_port()
        bond(account, endpoint=f"http://127.0.0.1:{port}")
        index = RELAYER_ACCOUNTS.index(account.address)
        return start_relayer(*extra, account=f"TEST::{index}", name=f"relayer-{index}", port=port)

    return start


def modelhub(chain, deployments_dir, *args: str) -> subprocess.CompletedProcess:
    """The `modelhub` command as a user runs it, against the test chain, with a model-file
    cache of this test's own (beside its deployments folder)."""
    env = {**os.environ, "MODELHUB_DEPLOYMENTS": str(deployments_dir),
           "MODELHUB_CACHE": str(deployments_dir.parent / "cache")}
    return subprocess.run([sys.executable, "-m", "modelhub.cli", *args, "--network", chain.provider.http_uri],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def one_error_line(result: subprocess.CompletedProcess, code: int, *phrases: str) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


def stored(relayer) -> list[str]:
    return sorted(p.name for p in (relayer.store / "artifacts").iterdir())


def test_a_relayer_without_the_file_leaves_calls_to_the_one_that_has_it_and_fetches_it_from_there(
        registered_relayer, relayer, second_relayer, uploader_hub, caller_hub, escrow, uploader):
    first = registered_relayer(relayer)
    second = registered_relayer(second_relayer)  # no --fetch-from: it finds the first on chain
    model_id = upload_registered(uploader_hub, first.url, IRIS, "iris", PRICE)
    credit = caller_hub.balance()
    # Half the calls are open to both; half can only be served by the one that lacks the file.
    calls = [caller_hub.request(model_id, IRIS_INPUT, relayer=second_relayer if i % 2 else None) for i in range(8)]
    ids = [call.id for call in calls]

    wait_until(lambda: all(caller_hub.get_request(i).status is RequestStatus.FULFILLED for i in ids),
               timeout=120, what="every call to be served")
    assert all(caller_hub.rejection(i) is None for i in ids)  # none was rejected
    for call in calls[1::2]:  # served by the relayer that fetched the file, and checked by the caller
        assert caller_hub.fulfilled_by(call.id)[0] == second_relayer.address
        assert caller_hub.fetch_output(call.id).relayer == second_relayer.address
    # The second relayer now holds the very file registered on chain, fetched once.
    assert stored(second) == [IRIS_CID]
    assert (second.store / "artifacts" / IRIS_CID).read_bytes() == IRIS.read_bytes()
    text = metrics(second)
    assert "modelhub_model_files_fetched_total 1.0" in text
    assert not [line for line in text.splitlines() if line.startswith("modelhub_requests_rejected_total")]
    assert "fetched the file" in second.log() and first.url in second.log()

    # Every call was paid once and the uploader earned from all of them.
    _, relayer_part, payees = parts(PRICE)
    assert caller_hub.balance() == credit - 8 * PRICE
    assert escrow.earningsOf(uploader) == 8 * payees
    assert escrow.earningsOf(relayer) + escrow.earningsOf(second_relayer) == 8 * relayer_part


def test_a_source_serving_another_file_is_never_trusted_and_a_designated_call_is_rejected_only_then(
        registered_relayer, relayer, uploader_hub, caller_hub, chain, deployments_dir):
    with FileSource(DIABETES.read_bytes()) as liar, FileSource(behaviour="endless") as flood:
        only = registered_relayer(relayer, "--fetch-from", liar.url + "/ipfs/{cid}",
                                  "--fetch-from", flood.url + "/ipfs/{cid}", "--file-wait", "1",
                                  "--max-upload-bytes", str(1 << 20))
        model_id = uploader_hub.upload_model(IRIS, "iris", PRICE).model_id  # registered, held nowhere
        credit = caller_hub.balance()
        open_call = caller_hub.request(model_id, IRIS_INPUT)
        designated = caller_hub.request(model_id, IRIS_INPUT, relayer=relayer)

        # Nobody has the file: the designated call is rejected (reason 3) and refunded at once...
        wait_until(lambda: caller_hub.get_request(designated.id).status is RequestStatus.REJECTED, timeout=60,
                   what="the designated call to be rejected")
        assert caller_hub.rejection(designated.id) == (relayer.address, RejectReason.MODEL_FILE)
        assert "no source served it" in only.result(designated.id)["error"]
        # ...the open one, which no relayer may reject, waits; nothing either source sent was kept.
        assert caller_hub.get_request(open_call.id).status is RequestStatus.PENDING
        assert only.result(open_call.id)["status"] == "waiting"
        assert caller_hub.balance() == credit - PRICE
        assert stored(only) == []
        assert liar.asked == [f"/ipfs/{IRIS_CID}"] and len(flood.asked) == 1  # not asked again for this file
        text = metrics(only)
        assert 'modelhub_model_file_fetch_failures_total{reason="digest_mismatch"} 1.0' in text
        assert 'modelhub_model_file_fetch_failures_total{reason="too_large"} 1.0' in text
        assert "discarded what" in only.log()

    # The uploader pushes the file: the open call is served, and so is the next designated one.
    pushed = modelhub(chain, deployments_dir, "models", "push", str(IRIS), "--relayer", only.url, "--json")
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["versions"] == [{"modelId": model_id, "version": 1}]
    wait_until(lambda: caller_hub.get_request(open_call.id).status is RequestStatus.FULFILLED, timeout=60,
               what="the waiting open call to be served")
    again = caller_hub.infer(model_id, IRIS_INPUT, relayer=relayer, timeout=60, poll=0.2)
    assert again.outputs["label"] == [0]
    assert stored(only) == [IRIS_CID]


def test_models_push_checks_the_file_against_the_chain_and_models_show_reads_its_tensors(
        registered_relayer, relayer, second_relayer, uploader_hub, chain, deployments_dir, tmp_path):
    first = registered_relayer(relayer)
    second = registered_relayer(second_relayer)
    model_id = uploader_hub.upload_model(IRIS, "iris", PRICE, metadata_uri="file://examples/iris/README.md").model_id

    # Before the file is anywhere, show says so; push refuses files no version has.
    shown = json.loads(modelhub(chain, deployments_dir, "models", "show", str(model_id), "--json").stdout)
    assert shown["inputs"] == [] and "no source served the model file" in shown["fileProblem"]
    one_error_line(modelhub(chain, deployments_dir, "models", "push", str(DIABETES)), 1,
                   "is the file or card of no model version on this deployment", "modelhub models upload")
    one_error_line(modelhub(chain, deployments_dir, "models", "push", str(IRIS), "--model", str(model_id),
                            "--version", "2"), 1, f"model {model_id} has versions 1 to 1")
    diabetes = uploader_hub.upload_model(DIABETES, "diabetes", PRICE).model_id
    one_error_line(modelhub(chain, deployments_dir, "models", "push", str(IRIS), "--model", str(diabetes)), 1,
                   f"is the file of no version of model {diabetes}")
    one_error_line(modelhub(chain, deployments_dir, "models", "push", str(IRIS), "--relayer", "http://127.0.0.1:9"),
                   1, "cannot reach the relayer")
    assert modelhub(chain, deployments_dir, "models", "push", str(IRIS), "--version", "1").returncode == 2
    assert stored(first) == stored(second) == []

    # Without --relayer: every active registered relayer.
    pushed = modelhub(chain, deployments_dir, "models", "push", str(IRIS), "--model", str(model_id))
    assert pushed.returncode == 0, pushed.stderr
    assert f"iris.onnx is the file of model {model_id} version 1 ({IRIS_CID})" in pushed.stdout
    assert f"stored at {relayer.address} {first.url}" in pushed.stdout
    assert f"stored at {second_relayer.address} {second.url}" in pushed.stdout
    assert stored(first) == stored(second) == [IRIS_CID]

    # show reads the tensors from the file fetched by CID (checked), and the card's example.
    human = modelhub(chain, deployments_dir, "models", "show", str(model_id))
    assert human.returncode == 0, human.stderr
    for line in ("  inputs\n    X  tensor(float)  [N, 4]", "  outputs\n    label  tensor(int64)  [N]",
                 "    probabilities  seq(map(int64,tensor(float)))",
                 '  example   {"X": [[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4], [6.3, 3.3, 6.0, 2.5]]}',
                 f"modelhub infer {model_id} '{{\"X\": [[5.1, 3.5, 1.4, 0.2]"):
        assert line in human.stdout, human.stdout
    shown = json.loads(modelhub(chain, deployments_dir, "models", "show", str(model_id), "--json").stdout)
    assert shown["inputs"] == [{"name": "X", "type": "tensor(float)", "shape": ["N", 4]}]
    assert shown["fileProblem"] is None and shown["exampleInput"]["X"][0] == [5.1, 3.5, 1.4, 0.2]


def test_a_card_given_with_its_version_is_checked_registered_by_content_and_pushed_like_a_file(
        registered_relayer, relayer, second_relayer, chain, deployments_dir, tmp_path):
    first = registered_relayer(relayer)
    second = registered_relayer(second_relayer)
    card = tmp_path / "card.json"
    card.write_bytes(b'{"tolerance": {"progression": {"rtol": 0.01}}}')
    card_cid = digest_to_cid(file_digest(card.read_bytes()))
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"tolerance": {"progression": {"rtol": "1%"}}}')

    # A card jurors could not read, or a card beside a metadata URI, registers nothing.
    one_error_line(modelhub(chain, deployments_dir, "models", "upload", str(DIABETES), "--name", "diabetes",
                            "--price", "0.001", "--card", str(bad)), 1,
                   f"the model card {bad} cannot be registered", "rtol of output \"progression\"")
    assert modelhub(chain, deployments_dir, "models", "upload", str(DIABETES), "--name", "diabetes", "--price",
                    "0.001", "--card", str(card), "--metadata-uri", "https://example.org").returncode == 2
    assert json.loads(modelhub(chain, deployments_dir, "models", "list", "--json").stdout)["models"] == []

    uploaded = modelhub(chain, deployments_dir, "models", "upload", str(DIABETES), "--name", "diabetes",
                        "--price", "0.001", "--card", str(card), "--relayer", first.url, "--json")
    assert uploaded.returncode == 0, uploaded.stderr
    upload = json.loads(uploaded.stdout)
    assert upload["metadataURI"] == f"ipfs://{card_cid}"
    assert stored(first) == sorted([card_cid, upload["cid"]])  # the card went with the file

    pushed = modelhub(chain, deployments_dir, "models", "push", str(card))
    assert pushed.returncode == 0, pushed.stderr
    assert f"card.json is the card of model {upload['modelId']} version 1 ({card_cid})" in pushed.stdout
    assert card_cid in stored(second)


def test_the_endpoints_asked_for_files_follow_the_registry(deployment, chain, bond, relayer, second_relayer,
                                                            stranger, hub_of, relayers):
    """The other relayers' endpoints, from the registry's events read by the real follower: a
    change of endpoint is followed, a relayer that withdrew its bond is no longer asked."""
    bond(relayer, endpoint="http://127.0.0.1:1111")
    bond(second_relayer, endpoint="http://127.0.0.1:2222")
    bond(stranger, endpoint="not a url")
    peers = RelayerEndpoints(relayer.address)
    follower = ChainFollower(JsonRpc(), {RELAYERS: deployment.relayer_registry}, deployment.start_block,
                             _MemoryCursor())
    follower.add(peers, in_memory=True)
    follower.step(chain.blocks.head.number)
    assert peers.others() == ["http://127.0.0.1:2222", "not a url"]  # not its own; parsed when asked

    relayers.setEndpoint("http://127.0.0.1:3333", sender=second_relayer)
    hub_of(stranger).relayer_begin_unbond()
    chain.mine(timestamp=chain.blocks.head.timestamp + relayers.unbondDelay() + 1)
    hub_of(stranger).relayer_withdraw_bond()
    follower.step(chain.blocks.head.number)
    assert peers.others() == ["http://127.0.0.1:3333"]


class _MemoryCursor:
    next_block: int | None = None

    def save(self, next_block: int) -> None:
        self.next_block = next_block


@pytest.fixture
def hub_of(deployment):
    return lambda account: Hub(deployment, account)
