"""Runs `modelhub up` as a real process on free ports, with its state, deployment files and user
config folder in a test's own folders (never the checkout's var/up or deployments/), and runs
`modelhub` commands against it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from modelhub.devchain import free_port

ROOT = Path(__file__).resolve().parents[2]
READY = "Ctrl-C stops"  # the last line `modelhub up` prints once everything is up


class UpProcess:
    """One `modelhub up`; `start()` waits until it says it is up, `stop()` is Ctrl-C. The ports
    stay the same across restarts (the relayer's is registered on chain)."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None):
        self.folder = folder
        self.state_dir = folder / "up"
        self.chain_port, self.relayer_port, self.hub_port = free_port(), free_port(), free_port()
        self.chain_url = f"http://127.0.0.1:{self.chain_port}"
        self.relayer_url = f"http://127.0.0.1:{self.relayer_port}"
        self.hub_url = f"http://127.0.0.1:{self.hub_port}"
        base = {k: v for k, v in os.environ.items()
                if k not in ("APE_FOUNDRY_HOST", "MODELHUB_NETWORK", "MODELHUB_ACCOUNT", "MODELHUB_DEPLOYMENT")}
        # What `modelhub up` writes and what the commands read: this test's folders only.
        self.env = {**base, "MODELHUB_DEPLOYMENTS": str(folder / "deployments"),
                    "XDG_CONFIG_HOME": str(folder / "config"), **(env or {})}
        self.process: subprocess.Popen | None = None
        self.output = ""

    def start(self, *args: str, timeout: float = 240) -> str:
        """Starts `modelhub up ARGS` and returns what it printed until it was up."""
        command = [sys.executable, "-m", "modelhub.cli", "up", "--chain-port", str(self.chain_port),
                   "--relayer-port", str(self.relayer_port), "--hub-port", str(self.hub_port),
                   "--state-dir", str(self.state_dir), *args]
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                raise AssertionError(f"`modelhub up` exited with {self.process.returncode}:\n" + "".join(lines))
            lines.append(line)
            if READY in line:
                self.output = "".join(lines)
                return self.output
        self.kill()
        raise AssertionError("`modelhub up` did not come up:\n" + "".join(lines))

    def stop(self, timeout: float = 90) -> int:
        """Ctrl-C (SIGINT), then waits for it to stop everything; returns its exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            self.output += self.process.stdout.read()
            self.process.stdout.close()
        self.process = None
        return code

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def modelhub(self, *args: str, cwd: Path = ROOT, timeout: float = 180) -> subprocess.CompletedProcess:
        """`modelhub ARGS` against this hub's chain (its default network, through the environment)."""
        return subprocess.run([sys.executable, "-m", "modelhub.cli", *args], cwd=cwd,
                              env={**self.env, "MODELHUB_NETWORK": self.chain_url},
                              capture_output=True, text=True, timeout=timeout)
