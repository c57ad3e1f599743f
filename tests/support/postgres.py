"""A throwaway PostgreSQL server for the indexer's tests and benchmark: Debian's `postgresql`, a
cluster made with initdb in a temp folder, run as an unprivileged user when we are root."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres_user(command: list[str]) -> list[str]:
    # postgres refuses to run as root
    return ["runuser", "-u", "nobody", "--", *command] if os.geteuid() == 0 else command


_DATA: dict[str, Path] = {}  # the data folder of each server running, by URL


def stop_postgres(url: str) -> None:
    """Stops the server of `url` now (a database that goes down under its users)."""
    subprocess.run(_as_postgres_user([str(PG_BIN / "pg_ctl"), "-D", str(_DATA[url]), "-m", "immediate", "stop"]),
                   check=True, capture_output=True)


@contextmanager
def postgres_server() -> Iterator[str]:
    """Starts a PostgreSQL server of its own on a free port; yields the URL of an empty database."""
    # Not under pytest's temp folder: its parents are private to root, and the server is not root.
    root = Path(tempfile.mkdtemp(prefix="modelhub-postgres-"))
    os.chmod(root, 0o777)
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    os.chmod(sockets, 0o777)
    port = _free_port()
    subprocess.run(_as_postgres_user([str(PG_BIN / "initdb"), "-D", str(data), "-U", "hub", "--auth=trust",
                                      "-E", "UTF8", "--locale=C"]), check=True, capture_output=True)
    subprocess.run(_as_postgres_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"),
                                      "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1", "-w", "start"]),
                   check=True, capture_output=True)
    url = f"postgresql://hub@127.0.0.1:{port}/index"
    _DATA[url] = data
    try:
        subprocess.run(_as_postgres_user([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "hub",
                                          "index"]), check=True, capture_output=True)
        yield url
    finally:
        _DATA.pop(url, None)
        subprocess.run(_as_postgres_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
