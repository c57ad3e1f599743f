"""A relayer outlives its chain going away: anvil is stopped (saving its state) and started
again on the same port, and the same relayer process serves the next call. Every transaction
here is sent by an outside client (`cast`), on a chain of the test's own.
"""

from __future__ import annotations

import json

import requests
from eth_account import Account

from tests.support.cast import DEV_KEYS, cast_send, cast_uint, run_deploy
from modelhub.devchain import Anvil, free_port
from modelhub.store import file_digest
from tests.support.relayers import ROOT, RelayerProcess, wait_until

IRIS = ROOT / "examples" / "iris" / "iris.onnx"
PRICE = 10**15
BOND = 100 * 10**18


def test_the_relayer_survives_a_chain_outage_and_serves_again_when_it_is_back(tmp_path):
    deployer_key, caller_key, relayer_key = DEV_KEYS[0], DEV_KEYS[2], DEV_KEYS[3]
    caller = Account.from_key(caller_key).address
    port, state = free_port(), tmp_path / "anvil-state.json"
    anvil = Anvil(port=port, state_path=state).start()
    relayer = None
    try:
        url = anvil.url
        folder = tmp_path / "deployments"
        deployed = run_deploy("--network", url, env={"MODELHUB_DEPLOYMENTS": str(folder)})
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        d = json.loads((folder / "31337.json").read_text())
        token, registry, relayers, escrow = d["token"], d["ModelRegistry"], d["RelayerRegistry"], d["InferenceEscrow"]

        relayer_address = Account.from_key(relayer_key).address
        cast_send(url, relayer_key, token, "mint(address,uint256)", relayer_address, str(BOND))
        cast_send(url, relayer_key, token, "approve(address,uint256)", relayers, str(BOND))
        cast_send(url, relayer_key, relayers, "register(string,uint256)", "http://127.0.0.1", str(BOND))
        digest = "0x" + file_digest(IRIS.read_bytes()).hex()
        cast_send(url, deployer_key, registry, "registerModel(string,bytes32,string,uint256)", "iris", digest, "", str(PRICE))
        cast_send(url, caller_key, token, "mint(address,uint256)", caller, str(10 * PRICE))
        cast_send(url, caller_key, token, "approve(address,uint256)", escrow, str(10 * PRICE))
        cast_send(url, caller_key, escrow, "deposit(uint256)", str(10 * PRICE))

        relayer = RelayerProcess(url, "TEST::3", tmp_path / "store", folder).start()
        assert requests.post(f"{relayer.url}/v1/artifacts", data=IRIS.read_bytes(), timeout=10).status_code == 200

        def call() -> int:
            request_id = cast_uint(url, escrow, "nextRequestId(address)(uint256)", caller)
            model_input = b'{"X":[[5.1,3.5,1.4,0.2]]}'
            cast_send(url, caller_key, escrow, "requestInference(uint256,uint32,bytes,uint256)", "1", "0",
                      "0x" + model_input.hex(), str(PRICE))
            return request_id

        def settled(request_id: int) -> bool:
            reply = requests.get(f"{relayer.url}/v1/requests/{request_id}", timeout=5)
            return reply.status_code == 200 and reply.json()["status"] == "settled"

        first = call()
        wait_until(lambda: settled(first), what="the first call to settle")

        anvil.stop()  # the chain goes away (and saves its state)
        wait_until(lambda: "modelhub_rpc_errors_total 0.0" not in _metrics(relayer), timeout=30,
                   what="the relayer to notice the outage")
        assert relayer.process.poll() is None, relayer.log()
        assert requests.get(f"{relayer.url}/healthz", timeout=5).status_code == 200

        anvil = Anvil(port=port, state_path=state).start()  # back, with everything it had
        second = call()
        wait_until(lambda: settled(second), timeout=90, what="the call made after the outage to settle")
        assert relayer.process.poll() is None
        relayer_part = PRICE * 1_000 // 10_000
        assert cast_uint(url, escrow, "earningsOf(address)(uint256)", relayer_address) == 2 * relayer_part
    finally:
        if relayer:
            relayer.kill()
        anvil.stop()


def _metrics(relayer: RelayerProcess) -> str:
    return requests.get(f"{relayer.url}/metrics", timeout=5).text
