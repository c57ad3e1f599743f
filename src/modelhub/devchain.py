"""A local anvil chain started and stopped by Model Hub itself: for the demo, `modelhub up`
and end-to-end tests, which need a chain that outlives one Ape command.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import requests

from .errors import ModelHubError


class DevChainError(ModelHubError):
    """anvil is missing or did not come up."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """True if nothing listens on 127.0.0.1:`port` (a refused connection)."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def rpc(url: str, method: str, *params, timeout: float = 5.0):
    """One JSON-RPC call; returns its result or raises DevChainError with the node's error."""
    reply = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, timeout=timeout)
    body = reply.json()
    if "error" in body:
        raise DevChainError(f"{method} failed: {body['error']}")
    return body["result"]


class Anvil:
    """An anvil process on 127.0.0.1; use as a context manager or call start()/stop()."""

    def __init__(self, port: int | None = None, chain_id: int = 31337, block_time: float | None = None,
                 log_path: Path | None = None, state_path: Path | None = None):
        self.port = port or free_port()
        self.chain_id = chain_id
        self.block_time = block_time
        self.log_path = log_path
        self.state_path = state_path  # loaded at start if it exists, written at stop
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> "Anvil":
        binary = shutil.which("anvil")
        if binary is None:
            raise DevChainError("anvil is not on PATH: run `make install` (it comes from the npm package @foundry-rs/anvil-linux-amd64)")
        command = [binary, "--host", "127.0.0.1", "--port", str(self.port), "--chain-id", str(self.chain_id)]
        if self.block_time:
            command += ["--block-time", str(self.block_time)]
        if self.state_path:
            command += ["--state", str(self.state_path)]
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise DevChainError(f"anvil exited with code {self._process.returncode} (port {self.port} taken?)")
            try:
                if int(rpc(self.url, "eth_chainId", timeout=1.0), 16) == self.chain_id:
                    return self
            except (requests.RequestException, DevChainError):
                time.sleep(0.1)
        self.stop()
        raise DevChainError(f"anvil did not answer on {self.url} within {timeout:.0f}s")

    def advance_time(self, seconds: int) -> None:
        """Moves the chain's clock forward and mines a block at the new time."""
        rpc(self.url, "evm_increaseTime", seconds)
        rpc(self.url, "evm_mine")

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> "Anvil":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
