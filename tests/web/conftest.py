"""Fixtures of the hub's page tests: a headless chromium for the session (tests.support.browser)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def browser():
    """A headless chromium for the whole session (the page tests only read pages)."""
    from tests.support.browser import CHROMEDRIVER, CHROMIUM, new_browser

    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("chromium and chromedriver are not installed: `make chromium` (apt-get install chromium "
                    "chromium-driver) installs them")
    driver = new_browser()
    yield driver
    driver.quit()
