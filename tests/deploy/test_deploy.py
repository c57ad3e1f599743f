"""`ape run deploy` against chains of its own, and a deployment driven by outside tools only:
Foundry's `cast` for every transaction and eth_account's EIP-712 encoder for the attestation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import keccak

from modelhub.devchain import Anvil
from modelhub.typed_data import Attestation
from modelhub.typed_data import sign as sign_attestation

from tests.support.cast import DEV_KEYS, cast, cast_send, cast_uint, run_deploy

ROOT = Path(__file__).resolve().parents[2]
SEPOLIA = 11155111
@pytest.fixture
def deployments_dir(tmp_path):
    return tmp_path / "deployments"


def test_deploying_on_a_dev_chain_writes_the_deployment_file_and_the_test_token(deployments_dir, tmp_path):
    config = tmp_path / "config"
    with Anvil() as anvil:
        result = run_deploy("--network", anvil.url, env={"MODELHUB_DEPLOYMENTS": str(deployments_dir),
                                                         "XDG_CONFIG_HOME": str(config)})
        assert result.returncode == 0, result.stdout + result.stderr
        deployment = json.loads((deployments_dir / "31337.json").read_text())
        # The same file in the user's config folder: the SDK and the CLI find it from any folder.
        assert json.loads((config / "modelhub" / "deployments" / "31337.json").read_text()) == deployment
        assert set(deployment) == {"chainId", "token", "ModelRegistry", "RelayerRegistry", "InferenceEscrow",
                                   "DisputeCourt", "startBlock"}
        assert deployment["chainId"] == 31337
        assert deployment["startBlock"] == 1
        assert cast("call", deployment["token"], "symbol()(string)", rpc_url=anvil.url) == '"tOPG"'
        escrow = deployment["InferenceEscrow"]
        assert cast("call", escrow, "token()(address)", rpc_url=anvil.url).lower() == deployment["token"].lower()
        assert cast("call", escrow, "registry()(address)", rpc_url=anvil.url).lower() == deployment["ModelRegistry"].lower()
        assert "InferenceEscrow" in result.stdout and "Wrote" in result.stdout
        court = deployment["DisputeCourt"]
        assert cast("call", court, "escrow()(address)", rpc_url=anvil.url).lower() == escrow.lower()
        assert cast("call", deployment["RelayerRegistry"], "court()(address)", rpc_url=anvil.url).lower() == court.lower()
        assert "Disputes: window 86400s" in result.stdout


@pytest.mark.parametrize("option,value,says", [
    ("--jury-size", "4", "jury size must be odd"),
    ("--unbond-delay", "86400", "unbond delay (86400 s) must exceed a whole dispute"),
    ("--slash-amount", str(15 * 10**18), "must exceed the challenger's and jurors' rewards"),
])
def test_dispute_terms_that_would_let_lying_pay_are_refused_before_anything_is_deployed(
    deployments_dir, option, value, says
):
    with Anvil() as anvil:
        result = run_deploy("--network", anvil.url, option, value, env={"MODELHUB_DEPLOYMENTS": str(deployments_dir)})
        assert result.returncode != 0
        assert says in result.stdout + result.stderr
        assert not (deployments_dir / "31337.json").exists()
        assert cast("block-number", rpc_url=anvil.url) == "0"  # not one transaction sent


def test_the_sepolia_entry_refuses_the_test_token_and_deploys_with_a_given_token(deployments_dir, project, accounts):
    from ape_accounts import import_account_from_private_key

    alias = "modelhub-test-deployer"
    passphrase = "not-a-secret"
    account = import_account_from_private_key(alias, passphrase, DEV_KEYS[0])
    try:
        with Anvil(chain_id=SEPOLIA, block_time=1) as anvil:
            env = {
                "MODELHUB_SEPOLIA_RPC": anvil.url,
                "MODELHUB_DEPLOYMENTS": str(deployments_dir),
                f"APE_ACCOUNTS_{alias}_PASSPHRASE": passphrase,
            }
            network = ["--network", "ethereum:sepolia:node"]

            refused = run_deploy(*network, "--account", alias, "--yes", env=env)
            assert refused.returncode != 0
            assert "not a dev network" in refused.stdout + refused.stderr
            assert "--token" in refused.stdout + refused.stderr

            no_account = run_deploy(*network, env=env)
            assert no_account.returncode != 0
            assert "--account" in no_account.stdout + no_account.stderr

            # An existing fee token on the "testnet", created by an outside tool.
            bytecode = project.HubToken.contract_type.deployment_bytecode.bytecode
            created = json.loads(cast("send", "--json", "--private-key", DEV_KEYS[0], "--create", bytecode, rpc_url=anvil.url))
            token = created["contractAddress"]

            result = run_deploy(*network, "--account", alias, "--yes", "--token", token, env=env)
            assert result.returncode == 0, result.stdout + result.stderr
            deployment = json.loads((deployments_dir / f"{SEPOLIA}.json").read_text())
            assert deployment["chainId"] == SEPOLIA
            assert deployment["token"].lower() == token.lower()
            escrow = deployment["InferenceEscrow"]
            assert cast("call", escrow, "token()(address)", rpc_url=anvil.url).lower() == token.lower()
            assert cast("call", escrow, "owner()(address)", rpc_url=anvil.url).lower() == account.address.lower()
    finally:
        Path(account.keyfile_path).unlink(missing_ok=True)


def test_an_outside_client_settles_a_call_and_the_split_is_exact(deployments_dir):
    deployer_key, caller_key, relayer_key = DEV_KEYS[:3]
    relayer_address = Account.from_key(relayer_key).address
    caller_address = Account.from_key(caller_key).address
    uploader = Account.from_key(deployer_key).address
    treasury = Account.create().address
    with Anvil() as anvil:
        url = anvil.url
        deployed = run_deploy("--network", url, "--treasury", treasury, env={"MODELHUB_DEPLOYMENTS": str(deployments_dir)})
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        d = json.loads((deployments_dir / "31337.json").read_text())
        token, registry, relayers, escrow = d["token"], d["ModelRegistry"], d["RelayerRegistry"], d["InferenceEscrow"]
        price = 1_000_000_000_000_000_007  # does not divide evenly by the fee bps
        digest = "0x" + keccak(b"model").hex()

        cast_send(url, deployer_key, registry, "registerModel(string,bytes32,string,uint256)", "iris", digest, "ipfs://card", str(price))
        cast_send(url, relayer_key, token, "mint(address,uint256)", relayer_address, str(100 * 10**18))
        cast_send(url, relayer_key, token, "approve(address,uint256)", relayers, str(100 * 10**18))
        cast_send(url, relayer_key, relayers, "register(string,uint256)", "http://127.0.0.1:8700", str(100 * 10**18))
        cast_send(url, caller_key, token, "mint(address,uint256)", caller_address, str(price))
        cast_send(url, caller_key, token, "approve(address,uint256)", escrow, str(price))
        cast_send(url, caller_key, escrow, "deposit(uint256)", str(price))
        model_input = b'{"X":[[5.1,3.5,1.4,0.2]]}'
        request_id = cast_uint(url, escrow, "nextRequestId(address)(uint256)", caller_address)
        assert request_id == (int(caller_address, 16) << 96) | 1
        cast_send(url, caller_key, escrow, "requestInference(uint256,uint32,bytes,uint256)", "1", "0", "0x" + model_input.hex(), str(price))
        assert cast_uint(url, escrow, "balanceOf(address)(uint256)", caller_address) == 0

        att = Attestation(request_id, 1, 1, keccak(model_input), keccak(b'{"label":[0]}'))
        signature = sign_attestation(relayer_key, att, 31337, escrow)
        struct = f"({request_id},1,1,0x{att.input_hash.hex()},0x{att.output_hash.hex()})"
        cast_send(url, caller_key, escrow, "fulfill((uint256,uint256,uint32,bytes32,bytes32),bytes)", struct, "0x" + signature.hex())

        protocol = price * 500 // 10_000
        relayer_part = price * 1_000 // 10_000
        payee_part = price - protocol - relayer_part
        assert cast_uint(url, escrow, "earningsOf(address)(uint256)", relayer_address) == relayer_part
        assert cast_uint(url, escrow, "earningsOf(address)(uint256)", uploader) == payee_part
        assert cast_uint(url, escrow, "earningsOf(address)(uint256)", treasury) == protocol
        assert protocol + relayer_part + payee_part == price
        assert cast_uint(url, escrow, "modelStats(uint256)(uint256,uint256)", "1") == 1

        cast_send(url, relayer_key, escrow, "withdrawEarnings()")
        assert cast_uint(url, token, "balanceOf(address)(uint256)", relayer_address) == relayer_part
