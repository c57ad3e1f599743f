"""A local anvil chain started and stopped by Model Hub itself (for the demo, `modelhub up` and
end-to-end tests), its state kept in a file between runs, and moving a dev chain's clock.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import requests

from .deployments import DEV_CHAIN_IDS
from .errors import ModelHubError, NotADevChainError


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


def advance_time(url: str, seconds: int) -> int:
    """Moves the clock of the local dev chain at `url` forward by `seconds` and mines a block at
    the new time; returns that block's timestamp. Refuses (NotADevChainError) any chain whose id
    is not a dev chain's or whose node does not answer anvil's own methods: a public network's
    clock cannot be moved, and a node that only pretends to be a dev chain must not be asked."""
    chain_id = int(rpc(url, "eth_chainId"), 16)
    if chain_id not in DEV_CHAIN_IDS:
        raise NotADevChainError(
            f"chain {chain_id} is not a local dev chain (chain id {' or '.join(map(str, sorted(DEV_CHAIN_IDS)))}): "
            "its clock cannot be moved; wait for the time to pass")
    try:
        rpc(url, "anvil_nodeInfo")
    except (DevChainError, requests.RequestException, ValueError):
        raise NotADevChainError(
            f"the node at {url} (chain {chain_id}) does not answer anvil's methods, so it is not a "
            "local dev chain started by `modelhub up`/anvil: its clock is left alone") from None
    rpc(url, "evm_increaseTime", int(seconds))
    rpc(url, "evm_mine")
    return int(rpc(url, "eth_getBlockByNumber", "latest", False)["timestamp"], 16)


class Anvil:
    """An anvil process on 127.0.0.1; use as a context manager or call start()/stop().

    With `state_path`, the chain's state (accounts, contracts, blocks and their logs) is loaded
    from that file at start if it exists and written to it at stop, so a restart goes on where
    the last run ended."""

    def __init__(self, port: int | None = None, chain_id: int = 31337, block_time: float | None = None,
                 log_path: Path | None = None, state_path: Path | None = None):
        self.port = port or free_port()
        self.chain_id = chain_id
        self.block_time = block_time
        self.log_path = log_path
        self.state_path = state_path
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
        resumed = bool(self.state_path and self.state_path.exists())
        if self.state_path:
            command += ["--state", str(self.state_path)]
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        # A session of its own: Ctrl-C in the terminal reaches only its owner, which stops it
        # last (after the relayer's final settlement), so the state written at stop is complete.
        self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                hint = (f"; a damaged {self.state_path} can be discarded (`modelhub up --fresh`)"
                        if resumed else "")
                raise DevChainError(f"anvil exited with code {self._process.returncode} (port {self.port} taken?"
                                    f"{hint}); see its log {self.log_path or ''}".rstrip())
            try:
                if int(rpc(self.url, "eth_chainId", timeout=1.0), 16) == self.chain_id:
                    if resumed:
                        self._resume_clock()
                    return self
            except (requests.RequestException, DevChainError):
                time.sleep(0.1)
        self.stop()
        raise DevChainError(f"anvil did not answer on {self.url} within {timeout:.0f}s")

    def _resume_clock(self) -> None:
        """anvil does not keep a clock moved by evm_increaseTime across a restart: without this,
        the next block could be older than the last one saved, and deadlines move back."""
        latest = int(rpc(self.url, "eth_getBlockByNumber", "latest", False)["timestamp"], 16)
        ahead = latest - int(time.time())
        if ahead >= 0:
            rpc(self.url, "evm_increaseTime", ahead + 1)

    def advance_time(self, seconds: int) -> int:
        """Moves the chain's clock forward and mines a block at the new time; returns its timestamp."""
        return advance_time(self.url, seconds)

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
