"""Runs `modelhub relayer run` as a real process against the test chain, for end-to-end tests;
several at once (`start_all`), and started again on the same store and port after a kill."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import requests

from modelhub.devchain import free_port

ROOT = Path(__file__).resolve().parents[2]


class RelayerProcess:
    """One relayer daemon process; `start()` waits until /healthz answers."""

    def __init__(self, network: str, account: str, store: Path, deployments: Path, *extra: str,
                 env: dict[str, str] | None = None, port: int | None = None):
        self.network, self.account, self.store, self.deployments = network, account, store, deployments
        self.extra = extra
        self.env = dict(env or {})
        self.port = port or free_port()  # a port of its own: the endpoint a test registered
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = store.parent / f"{store.name}.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "RelayerProcess":
        return self.launch().wait_ready(timeout)

    def launch(self) -> "RelayerProcess":
        """Starts the process without waiting for it to answer (see `wait_ready`); after a kill
        or a stop, a new process of the same relayer, on the same store and port."""
        assert self.process is None or self.process.poll() is not None, "it is running: stop or kill it first"
        command = [
            sys.executable, "-m", "modelhub.cli", "relayer", "run",
            "--network", self.network, "--account", self.account,
            "--host", "127.0.0.1", "--port", str(self.port), "--store", str(self.store),
            "--poll-interval", "0.1", *self.extra,
        ]
        env = {**os.environ, "MODELHUB_DEPLOYMENTS": str(self.deployments), **self.env}
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()  # the child has its own copy
        return self

    def wait_ready(self, timeout: float = 60) -> "RelayerProcess":
        """Waits until /healthz answers."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"relayer exited with {self.process.returncode}:\n{self.log()}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.kill()
        raise AssertionError(f"relayer did not answer /healthz within {timeout}s:\n{self.log()}")

    def health(self) -> dict:
        return requests.get(f"{self.url}/healthz", timeout=5).json()

    def result(self, request_id: int) -> dict:
        reply = requests.get(f"{self.url}/v1/requests/{request_id}", timeout=5)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, then wait for a clean exit; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL: the crash the state file must survive."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def calls(self) -> dict[int, tuple]:
        """request id -> (state, answered_at, output_hash), read straight from the state file."""
        rows = self._state_rows("SELECT request_id, state, answered_at, output_hash FROM calls")
        return {int(r[0]): (r[1], r[2], r[3]) for r in rows}

    def disputes(self) -> dict[int, tuple]:
        """dispute id -> (its part on the jury, vote, salt), read straight from the state file."""
        rows = self._state_rows("SELECT dispute_id, part, vote, salt FROM disputes")
        return {r[0]: (r[1], r[2], bytes(r[3]) if r[3] is not None else None) for r in rows}

    def _state_rows(self, query: str) -> list[tuple]:
        db = sqlite3.connect(self.store / "relayer.sqlite")
        try:
            return db.execute(query).fetchall()
        finally:
            db.close()

    def metric(self, name: str) -> float:
        """The value of an unlabelled metric (e.g. modelhub_juror_reveals_total), from /metrics."""
        for line in requests.get(f"{self.url}/metrics", timeout=5).text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"{self.url}/metrics has no {name}")


def start_all(processes: list[RelayerProcess], timeout: float = 90) -> list[RelayerProcess]:
    """Starts every process at once (they load in parallel), then waits for each to answer."""
    for process in processes:
        process.launch()
    try:
        for process in processes:
            process.wait_ready(timeout)
    except BaseException:
        for process in processes:
            process.kill()
        raise
    return processes


def upload_registered(hub, relayer_url: str, path: Path, name: str, price: int) -> int:
    """Registers a model file, then uploads it to a relayer (which stores only registered
    files); returns the model id."""
    from modelhub.hub import post_artifact

    model_id = hub.upload_model(path, name, price).model_id
    post_artifact(relayer_url, Path(path).read_bytes())
    return model_id


def wait_until(predicate, timeout: float = 60, interval: float = 0.2, what: str = "condition", explain=None):
    """Polls `predicate` until it is truthy; on a timeout, `explain()` (if given) adds what was seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f"; {explain()}" if explain else ""))
