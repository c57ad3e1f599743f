"""Fixtures of the indexer tests: a PostgreSQL server of their own (tests.support.postgres)."""

from __future__ import annotations

import pytest

from tests.support.postgres import PG_BIN, postgres_server


@pytest.fixture(scope="session")
def postgres_url():
    """postgresql://... of a fresh database on a server of our own, stopped after the session."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail("PostgreSQL 15 is not installed: `make postgres` (apt-get install postgresql) installs it")
    with postgres_server() as url:
        yield url
