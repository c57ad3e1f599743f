"""What the benchmarks share: a fresh anvil of their own with Model Hub deployed and one relayer
bonded, so that each bench measures only its own part."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ape import accounts, networks

from modelhub.deployments import DeployParams, Deployment, deploy
from modelhub.devchain import Anvil

TOKEN = 10**18


@dataclass
class BenchHub:
    """The chain, the deployment, its contracts and the role accounts of a bench."""

    anvil: Anvil
    deployment: Deployment
    token: Any
    registry: Any
    relayers: Any
    escrow: Any
    deployer: Any
    uploader: Any
    relayer: Any
    funder: Any
    treasury: Any


@contextmanager
def bonded_hub() -> Iterator[BenchHub]:
    """Anvil on a free port (no other chain is measured instead), the contracts deployed with the
    default parameters, and test account 2 registered as a relayer with a 100 tOPG bond."""
    from ape import project

    with Anvil() as anvil, networks.parse_network_choice(anvil.url):
        deployer, uploader, relayer, funder, treasury = accounts.test_accounts[:5]
        d = deploy(deployer, treasury=treasury.address, params=DeployParams())
        hub = BenchHub(anvil, d, project.HubToken.at(d.token), project.ModelRegistry.at(d.model_registry),
                       project.RelayerRegistry.at(d.relayer_registry), project.InferenceEscrow.at(d.inference_escrow),
                       deployer, uploader, relayer, funder, treasury)
        hub.token.mint(relayer, 100 * TOKEN, sender=relayer)
        hub.token.approve(hub.relayers, 100 * TOKEN, sender=relayer)
        hub.relayers.register("http://127.0.0.1:8700", 100 * TOKEN, sender=relayer)
        yield hub
