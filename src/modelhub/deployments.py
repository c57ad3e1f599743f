"""Where a deployment's contracts live (`<chainId>.json` files, found by network) and how to
create one. The deploy script, `modelhub up`, the demo and the tests all deploy through `deploy()`.

A deployment is looked up, for the chain the user is connected to, in: the file given
(`--deployment FILE`, `Hub.connect(..., deployment=FILE)`, or $MODELHUB_DEPLOYMENT), else the
folder $MODELHUB_DEPLOYMENTS alone, else the checkout's `deployments/` when run inside a Model
Hub checkout, the user's config folder (`~/.config/modelhub/deployments/`, which `ape run deploy`
and `modelhub up` also write), and the known deployments on public networks shipped with the
package (`known_deployments.toml`).
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, ConfigDict, Field

from .errors import ChainMismatchError, ModelHubError

# Chains on which the open-mint HubToken may be deployed: anvil/hardhat and geth --dev.
DEV_CHAIN_IDS = frozenset({31337, 1337})
# Environment: one deployment file (what --deployment sets), or the one folder to use.
FILE_VARIABLE = "MODELHUB_DEPLOYMENT"
FOLDER_VARIABLE = "MODELHUB_DEPLOYMENTS"
KNOWN_DEPLOYMENTS = "known_deployments.toml"


class DeploymentNotFoundError(ModelHubError):
    """No deployment file for the chain the user is connected to, or an unreadable one."""


class DeploymentRefusedError(ModelHubError):
    """The deploy was asked for something unsafe, e.g. the open-mint test token on a real network."""


class Deployment(BaseModel):
    """The content of a deployment file, `<chainId>.json`."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    chain_id: int = Field(alias="chainId")
    token: str
    model_registry: str = Field(alias="ModelRegistry")
    relayer_registry: str = Field(alias="RelayerRegistry")
    inference_escrow: str = Field(alias="InferenceEscrow")
    start_block: int = Field(alias="startBlock")
    # Deployments made before disputes existed have no court.
    dispute_court: str | None = Field(default=None, alias="DisputeCourt")

    def to_json(self) -> str:
        return json.dumps(self.model_dump(by_alias=True, exclude_none=True), indent=2) + "\n"


@dataclass(frozen=True)
class DeployParams:
    """Protocol parameters fixed or initialised at deployment (token base units and seconds)."""

    protocol_fee_bps: int = 500  # 5% to the treasury
    relayer_fee_bps: int = 1_000  # 10% to the relayer that served the call
    min_bond: int = 100 * 10**18
    # Longer than a whole dispute (window, draw, commit, reveal), so no relayer unbonds its way out.
    unbond_delay: int = 172_800
    request_timeout: int = 600
    # Receipts (off-chain calls): how long a price rise waits before it binds receipts, and how
    # long an account that signs receipts waits between announcing and making a withdrawal.
    # Both must leave relayers ample time to settle; relayers settle every minute by default.
    price_notice_period: int = 3_600
    withdrawal_delay: int = 3_600
    # Disputes (DisputeCourt, docs/disputes.md): a settled call may be challenged for
    # `dispute_window` seconds; the jury is drawn `draw_delay` blocks later, commits for
    # `commit_period` and reveals for `reveal_period` seconds.
    dispute_window: int = 86_400
    challenge_bond: int = 10 * 10**18
    slash_amount: int = 50 * 10**18  # on top of the call's price, which refunds the caller
    challenger_reward: int = 10 * 10**18
    juror_reward: int = 5 * 10**18  # shared by the jurors in the majority
    juror_penalty: int = 10**18  # per juror who does not reveal or votes against the majority
    jury_size: int = 5
    commit_period: int = 3_600
    reveal_period: int = 3_600
    draw_delay: int = 5

    def dispute_terms(self) -> tuple:
        """The DisputeCourt's `Terms` struct, in field order."""
        return (self.challenge_bond, self.slash_amount, self.challenger_reward, self.juror_reward,
                self.juror_penalty, self.dispute_window, self.commit_period, self.reveal_period,
                self.draw_delay, self.jury_size)

    def dispute_terms_problem(self) -> str | None:
        """Why the court would refuse these terms (DisputeCourt._checkTerms), or None: checked
        before anything is deployed."""
        if self.jury_size < 3 or self.jury_size > 31 or self.jury_size % 2 == 0:
            return f"the jury size must be odd, from 3 to 31, not {self.jury_size}"
        if self.draw_delay < 2:
            return f"the draw delay must be at least 2 blocks (the randomness of the next block is known), not {self.draw_delay}"
        if min(self.dispute_window, self.commit_period, self.reveal_period) <= 0:
            return "the dispute window, commit period and reveal period must be positive"
        if self.challenge_bond <= 0 or self.challenge_bond < self.juror_reward:
            return (f"the challenge bond ({self.challenge_bond}) must be positive and at least the juror reward "
                    f"({self.juror_reward}), which a failed challenge pays")
        if self.slash_amount <= self.challenger_reward + self.juror_reward:
            return (f"the slash amount ({self.slash_amount}) must exceed the challenger's and jurors' rewards "
                    f"({self.challenger_reward + self.juror_reward}): otherwise a liar challenging itself gains")
        if self.slash_amount > self.min_bond:
            return f"the slash amount ({self.slash_amount}) must not exceed the minimum bond ({self.min_bond})"
        dispute = self.dispute_window + self.draw_delay * 12 + self.commit_period + self.reveal_period
        if self.unbond_delay <= dispute:
            return (f"the unbond delay ({self.unbond_delay} s) must exceed a whole dispute: window + draw delay "
                    f"x 12 s + commit + reveal = {dispute} s, so that no relayer unbonds its way out")
        return None


def checkout_root(start: Path | None = None) -> Path | None:
    """The Model Hub checkout that `start` (default: the current folder) is in, if any."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "ape-config.yaml").is_file() and (folder / "contracts" / "InferenceEscrow.sol").is_file():
            return folder
    return None


def user_deployments_dir() -> Path:
    """The user's own folder of deployment files: ~/.config/modelhub/deployments on Linux."""
    return platformdirs.user_config_path("modelhub") / "deployments"


def deployments_dir() -> Path:
    """The folder deployment files are written to: $MODELHUB_DEPLOYMENTS, else the checkout's
    deployments/ (the current folder's when run outside a checkout)."""
    if folder := os.environ.get(FOLDER_VARIABLE):
        return Path(folder)
    return (checkout_root() or Path.cwd()) / "deployments"


def deployment_path(chain_id: int, folder: Path | None = None) -> Path:
    return (folder or deployments_dir()) / f"{chain_id}.json"


def load_deployment(chain_id: int, folder: Path | None = None, file: str | Path | None = None) -> Deployment:
    """The deployment on chain `chain_id` (see the module's docstring for where it is looked
    for); raises DeploymentNotFoundError saying where it looked and how to make one."""
    return locate_deployment(chain_id, folder, file)[0]


def locate_deployment(chain_id: int, folder: Path | None = None,
                      file: str | Path | None = None) -> tuple[Deployment, str]:
    """(the deployment on chain `chain_id`, where it was read): `file` (or $MODELHUB_DEPLOYMENT)
    alone if given, else `folder` (or $MODELHUB_DEPLOYMENTS) alone, else every place in order."""
    file = file or os.environ.get(FILE_VARIABLE)
    if file:
        return _read_file(Path(file), chain_id), str(file)
    if folder is None and os.environ.get(FOLDER_VARIABLE):
        folder = Path(os.environ[FOLDER_VARIABLE])
    looked = []
    for place in [folder] if folder else _search_folders():
        path = deployment_path(chain_id, place)
        if path.exists():
            return _read_file(path, chain_id), str(path)
        looked.append(f"{path} (no such file)")
    if folder is None:
        known, why = _known_deployment(chain_id)
        if known is not None:
            return known, f"the package's {KNOWN_DEPLOYMENTS}"
        looked.append(f"the package's known deployments ({why})")
    raise DeploymentNotFoundError(
        f"no Model Hub deployment for chain {chain_id}; looked in: {'; '.join(looked)}. "
        + ("Deploy one (`make up` for a local chain, or `ape run deploy --network <network>` in a "
           "Model Hub checkout), or give its file with --deployment FILE."
           if chain_id in DEV_CHAIN_IDS else
           "Connect to a network Model Hub is deployed on, or deploy it there (`ape run deploy "
           "--network <network> --account <alias> --token <fee token>`) and give the file it "
           "writes with --deployment FILE.")
    )


def _search_folders() -> list[Path]:
    """Where deployment files are looked for when none is named: the checkout's own (when run
    inside one), then the user's."""
    root = checkout_root()
    return [*([root / "deployments"] if root else []), user_deployments_dir()]


def _read_file(path: Path, chain_id: int) -> Deployment:
    try:
        deployment = Deployment.model_validate_json(path.read_text())
    except FileNotFoundError:
        raise DeploymentNotFoundError(f"the deployment file {path} does not exist; give the path of "
                                      "a <chainId>.json that `ape run deploy` wrote") from None
    except (OSError, ValueError) as exc:
        raise DeploymentNotFoundError(f"{path} is not a valid deployment file: {exc}") from exc
    if deployment.chain_id != chain_id:
        raise ChainMismatchError(
            f"the deployment file {path} is for chain {deployment.chain_id}, but the connected "
            f"network is chain {chain_id}: connect to its network (--network), or give this "
            "chain's file")
    return deployment


def known_deployments() -> dict[int, dict[str, Any]]:
    """The public networks the package knows (chain id -> {"name", and "deployment" once one
    exists}), from known_deployments.toml."""
    table = tomllib.loads(resources.files(__package__).joinpath(KNOWN_DEPLOYMENTS).read_text())
    return {int(chain_id): entry for chain_id, entry in table.get("chains", {}).items()}


def _known_deployment(chain_id: int) -> tuple[Deployment | None, str]:
    """(the shipped deployment on `chain_id` or None, and why not when None)."""
    entry = known_deployments().get(chain_id)
    if entry is None:
        return None, f"none for chain {chain_id}"
    if "deployment" not in entry:
        return None, f"Model Hub is not deployed on {entry['name']} (chain {chain_id}) yet"
    return Deployment.model_validate(entry["deployment"]), ""


def save_deployment(deployment: Deployment, folder: Path | None = None) -> Path:
    """Writes the deployment file atomically into `folder` (default: `deployments_dir()`) and
    returns its path."""
    path = deployment_path(deployment.chain_id, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(deployment.to_json())
    os.replace(tmp, path)
    return path


def remember_deployment(deployment: Deployment) -> Path:
    """Writes the deployment file into the user's config folder too, where the SDK and the CLI
    find it from any folder; returns its path."""
    return save_deployment(deployment, user_deployments_dir())


def deploy(
    deployer: Any,
    *,
    token: str | None = None,
    treasury: str | None = None,
    params: DeployParams = DeployParams(),
    progress: Any = None,
) -> Deployment:
    """Deploys the registries, the escrow and the dispute court (and, on dev chains without
    `token`, HubToken).

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

    problem = params.dispute_terms_problem()
    if problem:
        raise DeploymentRefusedError(f"refusing to deploy: {problem}; change the parameters")

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
    court = deployer.deploy(project.DisputeCourt, escrow.address, params.dispute_terms())
    relayers.setCourt(court.address, sender=deployer)
    say(f"DisputeCourt      {court.address}")
    return Deployment(
        chainId=chain_id,
        token=str(token),
        ModelRegistry=registry.address,
        RelayerRegistry=relayers.address,
        InferenceEscrow=escrow.address,
        startBlock=start_block,
        DisputeCourt=court.address,
    )
