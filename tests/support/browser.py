"""What the page tests share: `modelhub hub serve` as a real process over an index database, a
headless chromium driven by Selenium (Debian's chromium and chromedriver: `make chromium`), and
reading what a page shows, charts included (Chart.js's own view of its data)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from modelhub.devchain import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def new_browser(javascript: bool = True, width: int = 1280, height: int = 1400) -> webdriver.Chrome:
    """A headless chromium; with `javascript` False, one that runs no script (the pages must
    still list, sort and search)."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


@contextmanager
def hub_server(db_url: str, *options: str, env: dict | None = None) -> Iterator[str]:
    """`modelhub hub serve` on a free port over `db_url`; yields its base URL."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "modelhub.cli", "hub", "serve", "--db", db_url,
                                "--port", str(port), *options], cwd=ROOT, env={**os.environ, **(env or {})},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if process.poll() is not None:
                raise AssertionError(f"the hub exited: {process.stdout.read()}")
            try:
                requests.get(f"{url}/api/status", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            raise AssertionError(f"{url} never answered")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def rows(browser, table: str = "models") -> list[int]:
    """The model ids of a table's rows, top to bottom."""
    return [int(row.get_attribute("data-model"))
            for row in browser.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr[data-model]")]


def cell(browser, row: str, signal: str) -> str:
    return browser.find_element(By.CSS_SELECTOR, f"{row} td[data-signal='{signal}']").text


def chart(browser, name: str) -> dict:
    """What Chart.js draws in the chart `name`: its type, labels and first data set's values."""
    return browser.execute_script(
        "const c = Chart.getChart(document.getElementById('chart-' + arguments[0]));"
        "return c ? {type: c.config.type, labels: c.data.labels, values: c.data.datasets[0].data} : null;", name)
