"""Fixtures of the hub's page tests: the indexer tests' helpers (histories.py, pg_support.py,
test_indexer.py's Activity) on the import path, and a headless chromium (web_support.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "indexer"))


@pytest.fixture(scope="session")
def browser():
    """A headless chromium for the whole session (the page tests only read pages)."""
    from web_support import CHROMEDRIVER, CHROMIUM, new_browser

    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("chromium and chromedriver are not installed: `make chromium` (apt-get install chromium "
                    "chromium-driver) installs them")
    driver = new_browser()
    yield driver
    driver.quit()
