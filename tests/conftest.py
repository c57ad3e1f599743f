"""Shared fixtures: named role accounts, one deployment per session, and factories for models,
funded callers, bonded relayers, requests and signed attestations.

Ape snapshots the chain around every test, so each test starts from the session deployment.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass

import pytest
from eth_utils import keccak

from modelhub.deployments import DeployParams, deploy
from modelhub.typed_data import Attestation
from modelhub.typed_data import sign as sign_attestation

# The code under test also writes deployment files into the user's config folder (the deploy
# script, `modelhub up`), model files into the user's cache (the SDK's pre-flight check,
# `models show`) and kept fast calls into the user's data folder (`infer --fast`): this
# session's go to folders of its own, never the real ones.
for _variable in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
    _folder = tempfile.mkdtemp(prefix=f"modelhub-test-{_variable.lower()}-")
    os.environ[_variable] = _folder
    atexit.register(shutil.rmtree, _folder, ignore_errors=True)
os.environ.pop("MODELHUB_CACHE", None)

TOKEN = 10**18
PARAMS = DeployParams(
    protocol_fee_bps=500,
    relayer_fee_bps=1_000,
    min_bond=100 * TOKEN,
    unbond_delay=86_400,
    request_timeout=600,
    # Disputes that fit in the unbond delay above (a whole dispute must be shorter).
    dispute_window=3_600,
    commit_period=600,
    reveal_period=600,
    draw_delay=2,
)
IRIS_INPUT = b'{"X":[[5.1,3.5,1.4,0.2]]}'


# ---------------------------------------------------------------- accounts


@pytest.fixture(scope="session")
def deployer(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def uploader(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def caller(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def relayer(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def treasury(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def coauthor(accounts):
    return accounts[5]


@pytest.fixture(scope="session")
def stranger(accounts):
    return accounts[6]


@pytest.fixture(scope="session")
def second_relayer(accounts):
    return accounts[7]


# ---------------------------------------------------------------- deployment


@pytest.fixture(scope="session")
def deployment(deployer, treasury):
    return deploy(deployer, treasury=treasury.address, params=PARAMS)


@pytest.fixture(scope="session")
def token(project, deployment):
    return project.HubToken.at(deployment.token)


@pytest.fixture(scope="session")
def registry(project, deployment):
    return project.ModelRegistry.at(deployment.model_registry)


@pytest.fixture(scope="session")
def relayers(project, deployment):
    return project.RelayerRegistry.at(deployment.relayer_registry)


@pytest.fixture(scope="session")
def escrow(project, deployment):
    return project.InferenceEscrow.at(deployment.inference_escrow)


# ---------------------------------------------------------------- factories


def digest_of(content: bytes) -> bytes:
    """sha-256, the registry's artifact digest."""
    return hashlib.sha256(content).digest()


@pytest.fixture
def create_model(registry, uploader):
    """create_model(price=..., owner=uploader, name=..., content=...) -> modelId."""

    def create(price: int = 10**15, owner=None, name: str = "iris", content: bytes = b"onnx-bytes") -> int:
        tx = registry.registerModel(name, digest_of(content), "ipfs://card", price, sender=owner or uploader)
        return tx.return_value

    return create


@pytest.fixture
def fund(token, escrow):
    """fund(account, amount): mint fee tokens to `account` and deposit them as its credit."""

    def fund_(account, amount: int) -> None:
        token.mint(account, amount, sender=account)
        token.approve(escrow, amount, sender=account)
        escrow.deposit(amount, sender=account)

    return fund_


@pytest.fixture
def bond(token, relayers):
    """bond(account, amount=minBond): register `account` as an active relayer."""

    def bond_(account, amount: int = PARAMS.min_bond, endpoint: str = "http://127.0.0.1:8700") -> None:
        token.mint(account, amount, sender=account)
        token.approve(relayers, amount, sender=account)
        relayers.register(endpoint, amount, sender=account)

    return bond_


@pytest.fixture
def active_relayer(bond, relayer):
    bond(relayer)
    return relayer


@dataclass
class Call:
    """A request made in a test, with what is needed to attest it."""

    request_id: int
    model_id: int
    version: int
    price: int
    input: bytes

    def attestation(self, output: bytes = b'{"label":[0]}', **changes) -> Attestation:
        fields = dict(
            request_id=self.request_id,
            model_id=self.model_id,
            version=self.version,
            input_hash=keccak(self.input),
            output_hash=keccak(output),
        )
        fields.update(changes)
        return Attestation(**fields)


@pytest.fixture
def request_call(escrow, caller):
    """request_call(model_id, price, input=..., account=caller, version=0, via=None) -> Call; with
    `via` a relayer, the request is designated to it (requestInferenceVia)."""

    def request_(model_id: int, price: int, input: bytes = IRIS_INPUT, account=None, version: int = 0, via=None) -> Call:
        if via is None:
            tx = escrow.requestInference(model_id, version, input, price, sender=account or caller)
        else:
            tx = escrow.requestInferenceVia(model_id, version, input, price, via, sender=account or caller)
        event = tx.events.filter(escrow.InferenceRequested)[0]
        return Call(event.requestId, model_id, event.version, event.price, input)

    return request_


@pytest.fixture
def sign(chain, escrow):
    """sign(account, attestation, chain_id=..., verifying_contract=...) -> 65-byte signature."""

    def sign_(account, att: Attestation, chain_id: int | None = None, verifying_contract: str | None = None) -> bytes:
        return sign_attestation(
            account.private_key,
            att,
            chain_id if chain_id is not None else chain.chain_id,
            verifying_contract or escrow.address,
        )

    return sign_
