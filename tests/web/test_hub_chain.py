"""The hub over a real chain: random activity of every kind (the indexer tests' Activity), indexed
by the indexer with its summaries and windows, then read in a headless browser; every model's
calls and revenue are the chain's modelStats, every earner's unwithdrawn earnings the escrow's,
every relayer's bond the registry's. And the hub `modelhub up` starts (service.start_hub)
follows the chain by itself."""

from __future__ import annotations

import time

import pytest
import requests
from selenium.webdriver.common.by import By

from modelhub.deployments import save_deployment
from modelhub.indexer.schema import open_database
from modelhub.web.pages import tokens
from modelhub.web.service import start_hub
from tests.indexer.test_indexer import Activity, index_all  # tests/indexer: the random activity and how it is indexed
from tests.support.browser import cell, chart, hub_server


@pytest.fixture
def activity(chain, accounts, token, registry, relayers, escrow, deployer):
    driver = Activity(chain, accounts, token, registry, relayers, escrow, seed=21)

    def set_fees(protocol_bps: int, relayer_bps: int) -> None:
        escrow.setProtocolFeeBps(protocol_bps, sender=deployer)
        escrow.setRelayerFeeBps(relayer_bps, sender=deployer)

    driver.set_fees = set_fees
    driver.setup()
    for _ in range(60):
        driver.step()
    return driver


def test_the_pages_show_the_chains_numbers_after_random_activity(
    activity, tmp_path, deployment, chain, escrow, relayers, treasury, browser
):
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    index_all(open_database(url), deployment, chain.provider.http_uri)
    save_deployment(deployment, tmp_path)  # the hub checks the index holds this deployment
    with hub_server(url, "--chain-id", str(deployment.chain_id), env={"MODELHUB_DEPLOYMENTS": str(tmp_path)}) as base:
        for model in activity.models:
            calls, revenue = escrow.modelStats(model)
            browser.get(f"{base}/models/{model}")
            row = "#signals tr[data-window='all']"
            assert cell(browser, row, "calls") == f"{calls:,}", f"model {model}"
            assert cell(browser, row, "revenue") == tokens(revenue), f"model {model}"
            parts = [int(td.get_attribute("data-amount")) for td in
                     browser.find_elements(By.CSS_SELECTOR, "#earned td[data-amount]")]
            assert sum(parts) == revenue  # who earned what adds up to what the calls paid
            assert sum(chart(browser, "calls")["values"]) == calls
        earners = activity.callers + activity.relayer_accounts + [activity.coauthor, activity.third, treasury]
        for account in earners:
            browser.get(f"{base}/accounts/{account.address.lower()}")
            if browser.find_elements(By.ID, "error-message"):
                assert escrow.earningsOf(account) == 0  # never in the index: never earned
                continue
            facts = browser.find_element(By.ID, "account-facts").text
            assert f"Earnings not withdrawn yet {tokens(escrow.earningsOf(account))}" in facts
            assert f"Free credit in the escrow {tokens(escrow.balanceOf(account))}" in facts
        for relayer in activity.relayer_accounts:
            browser.get(f"{base}/relayers/{relayer.address.lower()}")
            assert f"Bond {tokens(relayers.relayerInfo(relayer)[1])}" in browser.find_element(By.ID, "relayer-facts").text
        browser.get(f"{base}/?sort=revenue")
        listed = [int(r.get_attribute("data-model")) for r in browser.find_elements(By.CSS_SELECTOR, "#models tr[data-model]")]
        by_revenue = sorted(activity.models, key=lambda m: (-escrow.modelStats(m)[1], m))
        assert listed == by_revenue


def test_the_hub_up_starts_follows_the_chain_and_stops(tmp_path, deployment, chain, create_model, fund, caller,
                                                        active_relayer, escrow, browser):
    model = create_model(price=10**15)
    hub_url, stop = start_hub(deployment, chain.provider.http_uri, f"sqlite:///{tmp_path / 'index.sqlite'}", port=0)
    try:
        assert requests.get(f"{hub_url}/api/status", timeout=5).status_code == 200
        fund(caller, 10**16)
        escrow.requestInference(model, 0, b'{"X":[[5.1,3.5,1.4,0.2]]}', 10**15, sender=caller)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the indexer follows by itself
            status = requests.get(f"{hub_url}/api/status", timeout=5).json()
            if status["block"] >= chain.blocks.head.number:
                break
            time.sleep(0.2)
        assert status["block"] >= chain.blocks.head.number
        browser.get(f"{hub_url}/models/{model}")
        assert browser.find_element(By.ID, "model-name").text.startswith("iris")
        assert cell(browser, "#signals tr[data-window='all']", "calls") == "0"  # requested, not settled yet
    finally:
        stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{hub_url}/api/status", timeout=2)
