"""The modelhub wheel as a user installs it: built from the checkout (offline, with the contracts'
ABIs inside), installed into a fresh venv outside the repository from the locked wheels (pip
--no-index: nothing downloads), and run from a folder that is not a checkout: the README's SDK
snippet and `modelhub` commands work against a hub `modelhub up` started, and a chain without a
deployment gets an error that says where it looked."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from modelhub.contracts import PACKAGED_CONTRACTS
from modelhub.devchain import Anvil
from tests.support.readme import on_ports, runnable_blocks
from tests.support.up import ROOT, UpProcess

WHEELHOUSE = ROOT / ".venv" / "wheelhouse"  # `make wheelhouse`: the locked packages as wheels
SEPOLIA = 11155111


@pytest.fixture(scope="session")
def venv(tmp_path_factory) -> Path:
    """A fresh venv with the wheel built from this checkout installed; its bin folder."""
    if not (WHEELHOUSE / ".complete").is_file():
        pytest.fail(f"the locked wheels are not in {WHEELHOUSE}: run `make wheelhouse` (`make test` does)")
    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(dist), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("modelhub-*.whl")
    packaged = set(zipfile.ZipFile(wheel).namelist())
    missing = {f"modelhub/abi/{name}.json" for name in PACKAGED_CONTRACTS} - packaged
    assert not missing, f"the wheel lacks {sorted(missing)}: `make compile` writes them"
    assert "modelhub/known_deployments.toml" in packaged

    folder = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(folder / "bin" / "python"), "install", "--quiet", "--no-index",
         "--no-compile", "--find-links", str(WHEELHOUSE), str(wheel)], capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stderr
    return folder / "bin"


def outside(venv: Path, folder: Path, config: Path, *command: str) -> subprocess.CompletedProcess:
    """`command` run from `folder` (not a checkout) with only the venv on PATH, Ape's data and the
    user config folder of a user of its own, and nothing of the checkout in the environment."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("MODELHUB_", "APE_", "SOLCX_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(PATH=f"{venv}:/usr/local/bin:/usr/bin:/bin", XDG_CONFIG_HOME=str(config),
               APE_DATA_FOLDER=str(folder / ".ape-data"))
    folder.mkdir(exist_ok=True)
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_the_installed_wheel_runs_the_readme_sdk_snippet_and_the_cli_from_any_folder(venv, tmp_path):
    home = tmp_path / "somewhere-else"
    where = outside(venv, home, tmp_path / "config", str(venv / "python"), "-c",
                    "import modelhub.contracts as c; print(c.__file__)")
    assert where.returncode == 0 and where.stdout.startswith(str(venv.parent)), where.stdout + where.stderr

    up = UpProcess(tmp_path)  # started from the checkout; its deployment lands in tmp_path/config too
    try:
        up.start()
        (snippet,) = runnable_blocks("python")
        (home / "snippet.py").write_text(on_ports(snippet, up.chain_url, up.relayer_url, up.hub_url))
        ran = outside(venv, home, tmp_path / "config", str(venv / "python"), "snippet.py")
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert ran.stdout.count("'label': [0]") == 2, ran.stdout  # the call on chain and the fast call

        listed = outside(venv, home, tmp_path / "config", str(venv / "modelhub"), "models", "list", "--network", up.chain_url)
        assert listed.returncode == 0, listed.stderr
        assert "iris-classifier" in listed.stdout and "diabetes-regressor" in listed.stdout
        balance = outside(venv, home, tmp_path / "config", str(venv / "modelhub"), "balance", "--account", "TEST::2",
                          "--network", up.chain_url)
        assert balance.returncode == 0, balance.stderr
        assert "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC" in balance.stdout and "credit" in balance.stdout

        # No deployment file where a user would have one: the error lists every place looked in.
        lost = outside(venv, home, tmp_path / "empty-config", str(venv / "modelhub"), "models", "list",
                       "--network", up.chain_url)
        assert lost.returncode == 1, lost.stdout + lost.stderr
        assert str(tmp_path / "empty-config" / "modelhub" / "deployments" / "31337.json") in lost.stderr
        assert "known deployments (none for chain 31337)" in lost.stderr and "--deployment FILE" in lost.stderr
        # ... and --deployment FILE names the file instead.
        chosen = outside(venv, home, tmp_path / "empty-config", str(venv / "modelhub"), "--deployment",
                         str(tmp_path / "deployments" / "31337.json"), "models", "list", "--network", up.chain_url)
        assert chosen.returncode == 0 and "iris-classifier" in chosen.stdout, chosen.stderr
        assert up.stop() == 0, up.output
    finally:
        up.kill()


def test_a_public_network_without_a_deployment_is_named_with_what_to_do(venv, tmp_path):
    with Anvil(chain_id=SEPOLIA) as sepolia:
        # Off dev chains every command names its account (TEST::0 here: it only has to exist).
        listed = outside(venv, tmp_path / "home", tmp_path / "config", str(venv / "modelhub"), "models", "list",
                         "--network", sepolia.url, "--account", "TEST::0")
    assert listed.returncode == 1, listed.stdout + listed.stderr
    assert f"Model Hub is not deployed on sepolia (chain {SEPOLIA}) yet" in listed.stderr
    assert "--deployment FILE" in listed.stderr and "Traceback" not in listed.stderr
