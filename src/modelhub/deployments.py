"""Where a deployment's contracts live: `deployments/<chainId>.json`, and how to create one.

The deploy script, the demo and the tests all deploy through `deploy()`, so every deployment
is made the same way and described by the same file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .errors import ModelHubError

# Chains on which the open-mint HubToken may be deployed: anvil/hardhat and geth --dev.
DEV_CHAIN_IDS = frozenset({31337, 1337})


class DeploymentNotFoundError(ModelHubError):
    """No deployments/<chainId>.json for the chain the user is connected to."""


class DeploymentRefusedError(ModelHubError):
    """The deploy was asked for something unsafe, e.g. the open-mint test token on a real network."""


class Deployment(BaseModel):
    """The content of deployments/<chainId>.json."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    chain_id: int = Field(alias="chainId")
    token: str
    model_registry: str = Field(alias="ModelRegistry")
    relayer_registry: str = Field(alias="RelayerRegistry")
    inference_escrow: str = Field(alias="InferenceEscrow")
    start_block: int = Field(alias="startBlock")

    def to_json(self) -> str:
        return json.dumps(self.model_dump(by_alias=True), indent=2) + "\n"


@dataclass(frozen=True)
class DeployParams:
    """Protocol parameters fixed or initialised at deployment (token base units and seconds)."""

    protocol_fee_bps: int = 500  # 5% to the treasury
    relayer_fee_bps: int = 1_000  # 10% to the relayer that served the call
    min_bond: int = 100 * 10**18
    unbond_delay: int = 86_400
    request_timeout: int = 600
    # Receipts (off-chain calls): how long a price rise waits before it binds receipts, and how
    # long an account that signs receipts waits between announcing and making a withdrawal.
    # Both must leave relayers ample time to settle; relayers settle every minute by default.
    price_notice_period: int = 3_600
    withdrawal_delay: int = 3_600


def deployments_dir() -> Path:
    """The folder of deployment files: $MODELHUB_DEPLOYMENTS, else ./deployments."""
    return Path(os.environ.get("MODELHUB_DEPLOYMENTS", "deployments"))


def deployment_path(chain_id: int, folder: Path | None = None) -> Path:
    return (folder or deployments_dir()) / f"{chain_id}.json"


def load_deployment(chain_id: int, folder: Path | None = None) -> Deployment:
    """Reads deployments/<chainId>.json, or says how to create it."""
    path = deployment_path(chain_id, folder)
    if not path.exists():
        raise DeploymentNotFoundError(
            f"no Model Hub deployment for chain {chain_id}: {path} does not exist. "
            f"Deploy first with `ape run deploy --network <network>`, or point "
            f"MODELHUB_DEPLOYMENTS at the folder that holds {path.name}."
        )
    try:
        return Deployment.model_validate_json(path.read_text())
    except ValueError as exc:
        raise DeploymentNotFoundError(f"{path} is not a valid deployment file: {exc}") from exc


def save_deployment(deployment: Deployment, folder: Path | None = None) -> Path:
    """Writes the deployment file atomically and returns its path."""
    path = deployment_path(deployment.chain_id, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(deployment.to_json())
    os.replace(tmp, path)
    return path


def deploy(
    deployer: Any,
    *,
    token: str | None = None,
    treasury: str | None = None,
    params: DeployParams = DeployParams(),
    progress: Any = None,
) -> Deployment:
    """Deploys the registries and the escrow (and, on dev chains without `token`, HubToken).

    `deployer` is an Ape account on the connected network; `progress` an optional callable
    given one line per contract deployed.
    """
    from ape import chain, project  # imported here: Ape is slow to import and needs a project

    chain_id = chain.chain_id
    if token is None and chain_id not in DEV_CHAIN_IDS:
        raise DeploymentRefusedError(
            f"chain {chain_id} is not a dev network: refusing to deploy the open-mint test token. "
            "Pass the fee token of this network with --token <address>."
        )

    say = progress or (lambda line: None)
    start_block = chain.blocks.head.number + 1
    if token is None:
        hub_token = deployer.deploy(project.HubToken)
        say(f"HubToken (tOPG)   {hub_token.address}")
        token = hub_token.address
    registry = deployer.deploy(project.ModelRegistry, params.price_notice_period)
    say(f"ModelRegistry     {registry.address}")
    relayers = deployer.deploy(project.RelayerRegistry, token, params.min_bond, params.unbond_delay)
    say(f"RelayerRegistry   {relayers.address}")
    escrow = deployer.deploy(
        project.InferenceEscrow,
        token,
        registry.address,
        relayers.address,
        treasury or deployer.address,
        params.protocol_fee_bps,
        params.relayer_fee_bps,
        params.request_timeout,
        params.withdrawal_delay,
    )
    say(f"InferenceEscrow   {escrow.address}")
    return Deployment(
        chainId=chain_id,
        token=str(token),
        ModelRegistry=registry.address,
        RelayerRegistry=relayers.address,
        InferenceEscrow=escrow.address,
        startBlock=start_block,
    )
