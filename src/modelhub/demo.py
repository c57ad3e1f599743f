"""The whole hub in one command: a local chain, a deployment, a relayer, the example models
(one shared with two co-authors), paid calls on chain and by receipt, and who earned what.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from .deployments import (
    Deployment,
    DeployParams,
    deploy,
    deployment_path,
    load_deployment,
    remember_deployment,
    save_deployment,
    user_deployments_dir,
)
from .devchain import Anvil, free_port
from .errors import ChainMismatchError, ModelHubError
from .hub import Hub

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TOKEN = 10**18

# Who plays which part: Ape's test accounts, which anvil funds with ether.
ROLES = {"operator": 0, "author": 1, "caller": 2, "relayer": 3, "co-author A": 4, "co-author B": 5}


@dataclass(frozen=True)
class ExampleModel:
    name: str
    file: str
    price: int
    payees: tuple[tuple[str, int], ...]  # (role, share in bps)
    calls: tuple[dict, ...]


EXAMPLE_MODELS = (
    ExampleModel(
        "iris-classifier", "iris/iris.onnx", TOKEN // 100,
        (("author", 5_000), ("co-author A", 3_000), ("co-author B", 2_000)),
        ({"X": [[5.1, 3.5, 1.4, 0.2]]}, {"X": [[6.0, 2.9, 4.5, 1.5]]}, {"X": [[6.9, 3.1, 5.4, 2.1]]}),
    ),
    ExampleModel(
        "diabetes-regressor", "diabetes/diabetes.onnx", TOKEN // 50,
        (("author", 10_000),),
        # age, sex, BMI, blood pressure, six blood serum measurements (see the model card)
        ({"X": [[59.0, 2.0, 32.1, 101.0, 157.0, 93.2, 38.0, 4.0, 4.8598, 87.0]]},
         {"X": [[48.0, 1.0, 21.6, 87.0, 183.0, 103.2, 70.0, 3.0, 3.8918, 69.0]]}),
    ),
)
IRIS_SPECIES = ("setosa", "versicolor", "virginica")
FAST_CALLS = 200  # fast calls of the iris model, paid with receipts and settled together
SETTLE_INTERVAL_S = 2  # the demo's relayer settles receipts this often (the default is a minute)


class Say:
    """Progress lines for people: steps, details and results."""

    def __init__(self, echo: Callable[[str], None]):
        self.echo = echo

    def step(self, text: str) -> None:
        self.echo(f"\n==> {text}")

    def line(self, text: str) -> None:
        self.echo(f"    {text}")


def tokens(base: int) -> str:
    whole, frac = divmod(base, TOKEN)
    return f"{whole}.{frac:018d}".rstrip("0").rstrip(".") + " tOPG"


@contextmanager
def relayer_process(url: str, deployments: Path, store: Path, port: int, log_path: Path) -> Iterator[str]:
    """Runs `modelhub relayer run` for the demo's relayer account; yields its HTTP URL."""
    command = [sys.executable, "-m", "modelhub.cli", "relayer", "run", "--network", url,
               "--account", f"TEST::{ROLES['relayer']}", "--port", str(port), "--store", str(store),
               "--poll-interval", "0.2", "--settle-interval", str(SETTLE_INTERVAL_S)]
    env = {**os.environ, "MODELHUB_DEPLOYMENTS": str(deployments)}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # Ctrl-C reaches us, and we stop it cleanly
    relayer_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise ModelHubError(f"the relayer exited with code {process.returncode}; see {log_path}")
            try:
                if requests.get(f"{relayer_url}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise ModelHubError(f"the relayer did not start within 90s; see {log_path}")
            time.sleep(0.2)
        yield relayer_url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def run(echo: Callable[[str], None], *, chain_port: int | None = None, relayer_port: int | None = None,
        workdir: Path, deployments: Path, keep_running: bool = False, hub_port: int | None = None,
        keep_state: bool = False) -> dict:
    """Starts everything, makes the paid calls, prints the earnings table; returns the figures.
    With `keep_running`, also starts the hub's index and pages (on `hub_port`), then waits for
    Ctrl-C before stopping them, the relayer and the chain. With `keep_state`, the chain's state
    is kept in `workdir` when it stops (with the relayer's and the index's): a run that finds it
    there goes on from it instead of setting the market up again."""
    from ape import accounts, networks

    say = Say(echo)
    resume = keep_state and has_saved_state(workdir)
    if not resume:
        if workdir.exists():
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
    chain_port = chain_port or free_port()
    relayer_port = relayer_port or free_port()
    relayer_url = f"http://127.0.0.1:{relayer_port}"

    say.step(f"Starting a local chain (anvil) on http://127.0.0.1:{chain_port}"
             + (f", from the state saved in {workdir}" if resume else ""))
    with Anvil(port=chain_port, log_path=workdir / "anvil.log", state_path=workdir / CHAIN_STATE if keep_state else None) as anvil, \
            networks.parse_network_choice(anvil.url):
        who = {role: accounts.test_accounts[index] for role, index in ROLES.items()}
        if resume:
            deployment, hubs = _resumed(say, workdir, who, relayer_url)
        else:
            deployment, hubs = _deployed(say, who, relayer_url)
            if keep_state:
                save_deployment(deployment, workdir)
        save_deployment(deployment, deployments)
        if keep_running:
            remember_deployment(deployment)  # the SDK and the CLI find this hub from any folder
        with relayer_process(anvil.url, deployments, workdir / "relayer", relayer_port, workdir / "relayer.log"):
            say.line(f"serving on {relayer_url} (log: {workdir / 'relayer.log'})")
            # A hub left running leaves the author's earnings to withdraw (as the README does).
            figures = {} if resume else _market(say, who, hubs, relayer_url, withdraw=not keep_running)
            if keep_running:
                hub_url, stop_hub = _start_hub(deployment, anvil.url, relayer_url, workdir, hub_port or free_port())
                try:
                    _wait_for_ctrl_c(say, anvil.url, relayer_url, hub_url, deployment.chain_id, deployments,
                                     workdir if keep_state else None)
                finally:
                    stop_hub()
        return figures


# `modelhub up`'s saved state, in its folder (var/up): anvil's state file and the deployment in it.
CHAIN_STATE = "chain-state.json"
DEV_CHAIN_ID = 31337


def has_saved_state(workdir: Path) -> bool:
    """True if `workdir` holds a chain state and its deployment, saved by an earlier `up`."""
    return (workdir / CHAIN_STATE).is_file() and deployment_path(DEV_CHAIN_ID, workdir).is_file()


def _deployed(say: Say, who: dict, relayer_url: str) -> tuple[Deployment, dict[str, Hub]]:
    """A new deployment, with the relayer's account registered and bonded."""
    say.step("Deploying Model Hub: fee token tOPG, ModelRegistry, RelayerRegistry, InferenceEscrow")
    deployment = deploy(who["operator"], params=DeployParams(), progress=say.line)
    say.line(f"fees: treasury (the operator) {DeployParams().protocol_fee_bps / 100:g}%, "
             f"serving relayer {DeployParams().relayer_fee_bps / 100:g}%, payees the rest")
    hubs = {role: Hub(deployment, account) for role, account in who.items()}
    relayer = hubs["relayer"]
    relayer.faucet(relayer.min_bond)
    relayer.relayer_register(relayer_url, relayer.min_bond)
    say.step(f"Starting a relayer ({relayer.address}) bonded with {tokens(relayer.min_bond)}")
    return deployment, hubs


def _resumed(say: Say, workdir: Path, who: dict, relayer_url: str) -> tuple[Deployment, dict[str, Hub]]:
    """The deployment saved in `workdir`, checked against the chain state loaded beside it."""
    deployment = load_deployment(DEV_CHAIN_ID, folder=workdir)
    try:
        hubs = {role: Hub(deployment, account) for role, account in who.items()}
    except ChainMismatchError as error:
        raise ModelHubError(f"the chain state saved in {workdir} does not hold the deployment saved beside "
                            f"it ({error}); start afresh with `modelhub up --fresh` (`make up-clean`)") from error
    relayer = hubs["relayer"]
    endpoint = relayer.relayer_info().endpoint
    if endpoint != relayer_url:
        raise ModelHubError(f"the relayer of the hub saved in {workdir} is registered at {endpoint}: start with "
                            f"--relayer-port {endpoint.rsplit(':', 1)[-1]} to go on with it, or afresh with --fresh")
    models = hubs["operator"].list_models()
    say.line(f"the same deployment (escrow {deployment.inference_escrow}), {len(models)} models, and every "
             "balance as they were when it stopped")
    say.step(f"Starting the relayer ({relayer.address})")
    return deployment, hubs


def _market(say: Say, who: dict, hubs: dict[str, Hub], relayer_url: str, withdraw: bool) -> dict:
    """The example models uploaded, paid calls on chain and by receipt, and who earned what
    (which the author then withdraws, with `withdraw`)."""
    name_of = {account.address: role for role, account in who.items()}
    say.step("Uploading the example models")
    author = hubs["author"]
    model_ids = {}
    for model in EXAMPLE_MODELS:
        upload = author.upload_model(EXAMPLES / model.file, model.name, model.price,
                                     metadata_uri=f"file://examples/{Path(model.file).parent}/README.md",
                                     relayer_url=relayer_url)
        if len(model.payees) > 1:
            author.set_payees(upload.model_id, [(who[role].address, share) for role, share in model.payees])
        model_ids[model.name] = upload.model_id
        shares = ", ".join(f"{role} {share / 100:g}%" for role, share in model.payees)
        say.line(f"#{upload.model_id} {model.name}: {tokens(model.price)} per call; payees {shares}; "
                 f"file {upload.cid[:16]}…")

    caller = hubs["caller"]
    calls = [(model, inputs) for model in EXAMPLE_MODELS for inputs in model.calls]
    iris = EXAMPLE_MODELS[0]
    budget = sum(model.price for model, _ in calls) + FAST_CALLS * iris.price
    caller.faucet(budget)
    caller.deposit(budget)
    say.step(f"The caller ({caller.address}) deposits {tokens(budget)} and makes {len(calls)} paid calls on chain")
    sent = [(model, inputs, caller.request(model_ids[model.name], inputs)) for model, inputs in calls]
    paid = 0
    for number, (model, inputs, request) in enumerate(sent, 1):
        caller.wait_for_request(request.id, timeout=120, poll=0.2)
        result = caller.fetch_output(request.id)
        paid += request.price
        say.line(f"call {number} {model.name} {_compact(inputs)} -> {_describe(model, result.output)} "
                 f"[{tokens(request.price)}, attestation by {name_of.get(result.relayer, result.relayer)} checked]")

    paid += _fast_calls(say, caller, hubs["relayer"], model_ids[iris.name], iris, relayer_url)

    say.step("Who earned what")
    earners = ["author", "co-author A", "co-author B", "relayer", "operator"]
    labels = {"relayer": "relayer (serving fee)", "operator": "treasury (protocol fee)"}
    rows = [(labels.get(role, role), who[role].address, hubs[role].earnings()) for role in earners]
    total = sum(amount for _, _, amount in rows)
    width = max(len(label) for label, _, _ in rows)
    for label, address, amount in rows:
        say.line(f"{label:<{width}}  {address}  {tokens(amount):>22}")
    say.line(f"{'total':<{width}}  {'':42}  {tokens(total):>22}")
    if total != paid:
        raise ModelHubError(f"earnings {total} do not sum to the {paid} the caller paid")
    say.line(f"= exactly what the caller paid ({tokens(paid)}, {paid} base units)")
    if withdraw:
        payout = hubs["author"].withdraw_earnings()
        say.line(f"the author withdraws {tokens(payout)}: wallet now holds {tokens(hubs['author'].token_balance())}")
    else:
        say.line(f"the author's earnings wait for `modelhub withdraw-earnings --account TEST::{ROLES['author']}`")
    return {"paid": paid, "earned": total, "calls": len(sent)}


def _start_hub(deployment: Deployment, chain_url: str, relayer_url: str, workdir: Path,
               port: int) -> tuple[str, Callable[[], None]]:
    """The hub's index (SQLite in `workdir`) following the chain, and its pages, reading model
    files from the relayer's store and the example cards from the project folder."""
    from .web.service import start_hub

    return start_hub(deployment, chain_url, f"sqlite:///{(workdir / 'hub.db').resolve()}", port=port,
                     store=workdir / "relayer" / "artifacts", fetch_from=(relayer_url,), cards=ROOT)


def _wait_for_ctrl_c(say: Say, chain_url: str, relayer_url: str, hub_url: str, chain_id: int,
                     deployments: Path, state: Path | None) -> None:
    say.step("Model Hub is up")
    say.line(f"hub         {hub_url} (models ranked by their signals; /api/ for programs)")
    say.line(f"chain       {chain_url} (chain id {chain_id})")
    say.line(f"relayer     {relayer_url}")
    say.line(f"deployment  {deployments / f'{chain_id}.json'} (and {user_deployments_dir() / f'{chain_id}.json'})")
    if state is not None:
        say.line(f"state       {state} (chain, relayer, index): kept when it stops; "
                 "`modelhub up --fresh` (`make up-clean`) starts afresh")
    caller, author = f"TEST::{ROLES['caller']}", f"TEST::{ROLES['author']}"
    say.line("try, in another terminal (`source tools/env.sh` first):")
    say.line("  modelhub models list")
    say.line(f"  modelhub faucet 5 --account {caller} && modelhub deposit 1 --account {caller}")
    say.line(f"  modelhub infer 1 '{{\"X\": [[5.1, 3.5, 1.4, 0.2]]}}' --account {caller}")
    say.line(f"  modelhub infer 1 --input '{{\"X\": [[5.1, 3.5, 1.4, 0.2]]}}' --fast --repeat 10 --account {caller}")
    say.line(f"  modelhub earnings --account {author}")
    say.line("Ctrl-C stops the hub, the relayer and the chain.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        say.step("Stopping")


def _fast_calls(say: Say, caller: Hub, relayer: Hub, model_id: int, model: ExampleModel, relayer_url: str) -> int:
    """FAST_CALLS calls over HTTP paid with signed receipts, then their settlement in one
    transaction; returns what they paid."""
    say.step(f"The caller makes {FAST_CALLS} fast calls of {model.name}: straight to the relayer over HTTP, "
             "each paid with a signed receipt")
    inputs = [model.calls[i % len(model.calls)] for i in range(FAST_CALLS)]
    reserve = FAST_CALLS * model.price
    with caller.fast_session(model_id, relayer=relayer_url, reserve=reserve,
                             progress=lambda text: None) as session:
        if session.reserved:
            say.line(f"the caller reserves {tokens(session.reserved)} of its credit for the relayer (one "
                     "transaction): receipts are paid only from it, so the relayer can serve at once; it "
                     f"comes back {session.hub.withdrawal_delay // 60} min after a release is announced")
        started = time.perf_counter()
        results = [session.infer(x) for x in inputs]
        elapsed = time.perf_counter() - started
    first, last = results[0], results[-1]
    say.line(f"call 1 {_compact(inputs[0])} -> {_describe(model, first.outputs)} "
             f"[receipt #{first.receipt.calls}, attestation by relayer checked]")
    say.line(f"{FAST_CALLS} calls in {elapsed:.2f} s ({FAST_CALLS / elapsed:.0f} calls/s from this one client), "
             f"no transaction; the last receipt owes {tokens(last.receipt.amount)} for {last.receipt.calls} calls")

    want = (last.receipt.calls, last.receipt.amount)
    deadline = time.monotonic() + 120
    while relayer.channel(caller.address, relayer.address, model_id) != want:
        if time.monotonic() > deadline:
            raise ModelHubError("the relayer did not settle the fast calls within 120 s; see its log")
        time.sleep(0.5)
    left = caller.reservation(relayer=relayer.address).reserved
    gas, transactions = caller.settlement_gas(model_id)
    say.line(f"the relayer settled them with settleReceipts, every {SETTLE_INTERVAL_S} s: {transactions} "
             f"transaction{'s' if transactions > 1 else ''}, {gas:,} gas for {FAST_CALLS} calls "
             f"({gas / FAST_CALLS:,.0f} gas per call), paid out of the reservation "
             f"({tokens(left)} left in it)")
    return last.receipt.amount


def _compact(inputs: dict) -> str:
    text = "[" + ", ".join(f"{v:g}" for v in inputs["X"][0]) + "]"
    return text if len(text) <= 24 else text[:22] + "…]"


def _describe(model: ExampleModel, output: dict) -> str:
    if "label" in output:
        label = output["label"][0]
        probability = output["probabilities"][0][str(label)]
        return f"{IRIS_SPECIES[label]} (p={probability:.2f})"
    return f"disease progression in a year: {output['progression'][0][0]:.0f}"
