"""Where a deployment file is found for a chain: the file named, the one folder named, else the
checkout's deployments/, the user's config folder and the package's known deployments, in that
order; and errors that say where they looked."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelhub import deployments as d
from modelhub.errors import ChainMismatchError

ROOT = Path(__file__).resolve().parents[2]


def deployment(chain_id: int = 31337, start_block: int = 1) -> d.Deployment:
    return d.Deployment(chainId=chain_id, token="0x" + "11" * 20, ModelRegistry="0x" + "22" * 20,
                        RelayerRegistry="0x" + "33" * 20, InferenceEscrow="0x" + "44" * 20, startBlock=start_block)


@pytest.fixture
def places(tmp_path, monkeypatch):
    """A checkout-like folder (the current one), a user config folder, nothing in the environment."""
    checkout = tmp_path / "checkout"
    (checkout / "contracts").mkdir(parents=True)
    (checkout / "ape-config.yaml").write_text("name: modelhub\n")
    (checkout / "contracts" / "InferenceEscrow.sol").write_text("")
    (checkout / "src").mkdir()
    monkeypatch.chdir(checkout / "src")  # inside the checkout, below its root
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv(d.FILE_VARIABLE, raising=False)
    monkeypatch.delenv(d.FOLDER_VARIABLE, raising=False)
    return checkout, tmp_path / "config" / "modelhub" / "deployments"


def test_inside_a_checkout_its_deployments_come_before_the_users(places):
    checkout, user = places
    d.save_deployment(deployment(start_block=7), user)
    assert d.locate_deployment(31337) == (deployment(start_block=7), str(user / "31337.json"))
    d.save_deployment(deployment(start_block=9))  # written where the deploy script writes: the checkout's
    assert (checkout / "deployments" / "31337.json").is_file()
    assert d.load_deployment(31337) == deployment(start_block=9)


def test_outside_a_checkout_the_users_folder_is_found(places, tmp_path, monkeypatch):
    _, user = places
    monkeypatch.chdir(tmp_path)
    d.remember_deployment(deployment(start_block=5))
    assert d.locate_deployment(31337) == (deployment(start_block=5), str(user / "31337.json"))


def test_a_named_file_or_folder_is_the_only_place_looked_in(places, tmp_path, monkeypatch):
    _, user = places
    d.save_deployment(deployment(start_block=7), user)
    elsewhere = d.save_deployment(deployment(start_block=3), tmp_path / "mine")
    assert d.load_deployment(31337, file=elsewhere) == deployment(start_block=3)
    monkeypatch.setenv(d.FILE_VARIABLE, str(elsewhere))  # what --deployment sets
    assert d.load_deployment(31337) == deployment(start_block=3)
    monkeypatch.delenv(d.FILE_VARIABLE)
    monkeypatch.setenv(d.FOLDER_VARIABLE, str(tmp_path / "empty"))
    with pytest.raises(d.DeploymentNotFoundError) as error:
        d.load_deployment(31337)
    assert str(tmp_path / "empty" / "31337.json") in str(error.value)
    assert str(user) not in str(error.value)  # an explicit folder is not searched past


def test_not_found_lists_every_place_looked_in_and_what_to_do(places):
    checkout, user = places
    with pytest.raises(d.DeploymentNotFoundError) as error:
        d.load_deployment(31337)
    message = str(error.value)
    assert str(checkout / "deployments" / "31337.json") in message and str(user / "31337.json") in message
    assert "known deployments (none for chain 31337)" in message
    assert "`make up`" in message and "--deployment FILE" in message


def test_sepolia_is_known_without_a_deployment_and_a_shipped_one_would_be_found(places, monkeypatch):
    with pytest.raises(d.DeploymentNotFoundError, match=r"not deployed on sepolia \(chain 11155111\) yet"):
        d.load_deployment(11155111)
    shipped = deployment(chain_id=11155111).model_dump(by_alias=True)
    monkeypatch.setattr(d, "known_deployments", lambda: {11155111: {"name": "sepolia", "deployment": shipped}})
    assert d.locate_deployment(11155111) == (deployment(chain_id=11155111), "the package's known_deployments.toml")


def test_a_file_for_another_chain_or_not_a_deployment_is_refused(places, tmp_path):
    other = d.save_deployment(deployment(chain_id=1337), tmp_path / "mine")
    with pytest.raises(ChainMismatchError, match="is for chain 1337"):
        d.load_deployment(31337, file=other)
    broken = tmp_path / "broken.json"
    broken.write_text("{}")
    with pytest.raises(d.DeploymentNotFoundError, match="not a valid deployment file"):
        d.load_deployment(31337, file=broken)
    with pytest.raises(d.DeploymentNotFoundError, match="does not exist"):
        d.load_deployment(31337, file=tmp_path / "missing.json")


def test_this_repository_is_a_checkout_and_a_temporary_folder_is_not(tmp_path):
    assert d.checkout_root(ROOT / "src" / "modelhub") == ROOT
    assert d.checkout_root(tmp_path) is None
