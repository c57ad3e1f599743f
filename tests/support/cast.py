"""Outside-client helpers for tests: Foundry's `cast` against a chain of the test's own, anvil's
dev keys, and `ape run deploy` as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from eth_account import Account

ROOT = Path(__file__).resolve().parents[2]
# anvil's dev accounts come from this well-known mnemonic, each funded with 10,000 ETH.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
Account.enable_unaudited_hdwallet_features()
DEV_KEYS = [
    "0x" + Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key.hex().removeprefix("0x")
    for i in range(10)
]


def run_deploy(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ape", "run", "deploy", *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, **(env or {})},
    )


def cast(*args: str, rpc_url: str) -> str:
    command, *rest = args
    result = subprocess.run(["cast", command, "--rpc-url", rpc_url, *rest], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def cast_send(rpc_url: str, key: str, to: str, signature: str, *args: str) -> dict:
    receipt = json.loads(cast("send", "--json", "--private-key", key, to, signature, *args, rpc_url=rpc_url))
    assert int(receipt["status"], 16) == 1, receipt
    return receipt


def cast_uint(rpc_url: str, to: str, signature: str, *args: str) -> int:
    # cast prints large numbers with a scientific hint: "850000000000000000 [8.5e17]"
    return int(cast("call", to, signature, *args, rpc_url=rpc_url).split()[0])


