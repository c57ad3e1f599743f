"""`modelhub up`: the whole hub comes up, the CLI and the hub's pages work against it, and Ctrl-C
stops the chain, the relayer and the hub it started (their ports are free again)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from modelhub.devchain import free_port, port_is_free

ROOT = Path(__file__).resolve().parents[2]


def modelhub(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modelhub.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_up_serves_the_cli_and_ctrl_c_stops_everything_it_started(tmp_path):
    chain_port, relayer_port, hub_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "APE_FOUNDRY_HOST"}
    up = subprocess.Popen(
        [sys.executable, "-m", "modelhub.cli", "up", "--chain-port", str(chain_port), "--relayer-port", str(relayer_port),
         "--hub-port", str(hub_port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = up.stdout.readline()
            assert line or up.poll() is None, "".join(lines)
            lines.append(line)
            if "Ctrl-C stops" in line:  # the last line of what `up` prints once everything is up
                break
        else:
            raise AssertionError("`modelhub up` did not come up:\n" + "".join(lines))
        output = "".join(lines)
        assert "= exactly what the caller paid" in output

        network = f"http://127.0.0.1:{chain_port}"
        listed = modelhub("models", "list", "--network", network, "--json", env=env)
        assert listed.returncode == 0, listed.stderr
        names = [model["name"] for model in json.loads(listed.stdout)["models"]]
        assert names == ["iris-classifier", "diabetes-regressor"]

        hub_url = f"http://127.0.0.1:{hub_port}"
        assert f"hub         {hub_url}" in output
        shown = modelhub("models", "show", "1", "--network", network, "--json", env=env)
        assert shown.returncode == 0, shown.stderr
        paid_calls = json.loads(shown.stdout)["calls"]  # the chain's modelStats
        assert paid_calls > 0
        # The hub's index follows the chain; once caught up, the model shows the chain's paid calls.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            model = requests.get(f"{hub_url}/api/models/1", timeout=10)
            if model.status_code == 200 and model.json()["signals"]["all"]["calls"] == paid_calls:
                break
            time.sleep(0.5)
        assert model.status_code == 200, model.text
        assert model.json()["signals"]["all"]["calls"] == paid_calls
        page = requests.get(f"{hub_url}/models/1", timeout=10)
        assert page.status_code == 200 and "iris-classifier" in page.text

        up.send_signal(signal.SIGINT)  # Ctrl-C
        assert up.wait(timeout=60) == 0, up.stdout.read()
    finally:
        if up.poll() is None:
            up.kill()
    assert port_is_free(chain_port) and port_is_free(relayer_port) and port_is_free(hub_port)
