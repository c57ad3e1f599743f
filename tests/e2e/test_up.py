"""`modelhub up`: the whole hub comes up, the CLI and the hub's pages work against it, and Ctrl-C
stops the chain, the relayer and the hub it started (their ports are free again)."""

from __future__ import annotations

import json
import time

import requests

from modelhub.devchain import port_is_free
from tests.support.up import UpProcess


def test_up_serves_the_cli_and_ctrl_c_stops_everything_it_started(tmp_path):
    up = UpProcess(tmp_path)
    try:
        output = up.start()
        assert "= exactly what the caller paid" in output

        listed = up.modelhub("models", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        names = [model["name"] for model in json.loads(listed.stdout)["models"]]
        assert names == ["iris-classifier", "diabetes-regressor"]

        assert f"hub         {up.hub_url}" in output
        shown = up.modelhub("models", "show", "1", "--json")
        assert shown.returncode == 0, shown.stderr
        paid_calls = json.loads(shown.stdout)["calls"]  # the chain's modelStats
        assert paid_calls > 0
        # The hub's index follows the chain; once caught up, the model shows the chain's paid calls.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            model = requests.get(f"{up.hub_url}/api/models/1", timeout=10)
            if model.status_code == 200 and model.json()["signals"]["all"]["calls"] == paid_calls:
                break
            time.sleep(0.5)
        assert model.status_code == 200, model.text
        assert model.json()["signals"]["all"]["calls"] == paid_calls
        page = requests.get(f"{up.hub_url}/models/1", timeout=10)
        assert page.status_code == 200 and "iris-classifier" in page.text

        assert up.stop() == 0, up.output  # Ctrl-C
    finally:
        up.kill()
    assert port_is_free(up.chain_port) and port_is_free(up.relayer_port) and port_is_free(up.hub_port)
