"""The hub's pages in a real headless browser (chromium + Selenium): the model list sorts by
every signal and searches, also without JavaScript; a model page shows its card, its tensors
read from the ONNX file, an example input, the calls to make, and charts with a point per day;
the numbers are the index's; leaderboards, account and relayer pages; bad input gets a clear
page, and a database that is down or holds another deployment a clear 503."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.histories import ALICE, BOB, CAROL, COAUTHOR, DAY, OWNER, RELAYER, T0, TREASURY, History, fresh_database
from modelhub.indexer import SORT_KEYS, WINDOWS, signals
from modelhub.indexer.schema import bind, open_database
from modelhub.store import ModelStore
from modelhub.web.pages import tokens
from tests.support.postgres import postgres_server, stop_postgres
from tests.support.synthetic import NOW, populate
from tests.support.browser import ROOT, cell, chart, hub_server, new_browser, rows

IRIS = ROOT / "examples" / "iris"
NOW_40 = T0 + 40 * DAY  # the cursor time of fresh_database


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A model store holding the iris classifier's file (and not model 3's)."""
    folder = tmp_path_factory.mktemp("store")
    return folder, ModelStore(folder).put((IRIS / "iris.onnx").read_bytes())


@pytest.fixture(scope="module")
def small_hub(tmp_path_factory, store):
    """A hand-made history: iris (model 1, its file in the store, its card under --cards) used by
    three callers over two days, a rejected call and a receipt; model 2 unused; model 3 with a
    file nobody has."""
    folder, iris = store
    path = tmp_path_factory.mktemp("small") / "index.sqlite"
    engine = fresh_database(path)
    history = History()
    history.add("TreasuryChanged", T0, oldTreasury="0x" + "0" * 40, newTreasury=TREASURY)
    history.add("FeesEffectiveAt", T0, protocolFeeBps=500, relayerFeeBps=1_000, effectiveAt=T0)
    history.add("ModelRegistered", T0, modelId=1, owner=OWNER, name="iris-classifier", artifactDigest=iris.digest_hex,
                pricePerCall=10**16, metadataURI="file://examples/iris/README.md")
    history.add("ModelRegistered", T0, modelId=2, owner=ALICE, name="wine-tree", artifactDigest="0x" + "22" * 32,
                pricePerCall=5, metadataURI="https://example.org/wine")
    history.add("ModelRegistered", T0, modelId=3, owner=OWNER, name="digits <b>bold</b>",
                artifactDigest="0x" + "33" * 32, pricePerCall=7, metadataURI="")
    history.add("PayeesChanged", T0, modelId=1, accounts=[OWNER, COAUTHOR], shares=[6_000, 4_000])
    history.add("PayeesEffectiveAt", T0, modelId=1, effectiveAt=T0)
    history.paid_call(1, ALICE, T0 + 10 * DAY + 100, settled_after=30, price=10**16)
    history.paid_call(1, BOB, T0 + 10 * DAY + 200, settled_after=50, price=10**16)
    history.paid_call(1, ALICE, T0 + 12 * DAY + 300, settled_after=40, price=10**16)
    history.failed_call(1, CAROL, T0 + 12 * DAY + 400, "rejected")
    history.add("Reserved", T0 + 38 * DAY, caller=CAROL, relayer=RELAYER, amount=5 * 10**16, reserved=5 * 10**16)
    history.add("ReceiptSettled", T0 + 38 * DAY, caller=CAROL, relayer=RELAYER, modelId=1, calls=4,
                amount=4 * 10**16, paid=4 * 10**16)
    history.paid_call(3, BOB, T0 + 39 * DAY, settled_after=10, price=7)
    history.apply(engine)
    engine.dispose()
    url = f"sqlite:///{path}"
    with hub_server(url, "--store", str(folder), "--cards", str(ROOT)) as base:
        yield base, url


@pytest.fixture(scope="module")
def busy_hub(tmp_path_factory):
    """60 models and 8,000 calls (tests.support.synthetic), for sorting and searching a real-looking list."""
    path = tmp_path_factory.mktemp("busy") / "index.sqlite"
    engine = open_database(f"sqlite:///{path}")
    populate(engine, models=60, calls=8_000, callers=300, relayers=4, days=45, seed=5)
    engine.dispose()
    url = f"sqlite:///{path}"
    with hub_server(url) as base:
        yield base, url


def follow(browser, link: str) -> None:
    """Clicks the link `link` (a CSS selector) and waits for the page it leads to."""
    before = browser.current_url
    browser.find_element(By.CSS_SELECTOR, link).click()
    WebDriverWait(browser, 20).until(lambda b: b.current_url != before
                                     and b.execute_script("return document.readyState") == "complete")


def search(browser, text: str) -> None:
    """Types `text` in the search box and submits it, then waits for the answer to load."""
    box = browser.find_element(By.NAME, "search")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)
    WebDriverWait(browser, 20).until(lambda b: "search=" in b.current_url
                                     and b.execute_script("return document.readyState") == "complete")


def expected_order(url: str, sort: str, window: str = "all", descending: bool = True, search=None) -> list[int]:
    engine = open_database(url)
    with engine.connect() as db:
        found = signals.list_models(db, NOW, sort=sort, window=window, descending=descending, search=search)
    engine.dispose()
    return [m.model_id for m in found]


# ---------------------------------------------------------------- the list


def test_the_list_sorts_by_every_signal_from_its_column_heading(browser, busy_hub):
    base, url = busy_hub
    browser.get(base + "/")
    assert rows(browser) == expected_order(url, "calls")  # the default
    browser.get(base + "/?sort=newest")
    assert rows(browser) == expected_order(url, "newest") == list(range(60, 10, -1))
    for sort in SORT_KEYS:
        if sort == "newest":
            continue  # the "#" heading, above
        follow(browser, f"th a[data-sort='{sort}']")
        assert rows(browser) == expected_order(url, sort), sort
        follow(browser, f"th a[data-sort='{sort}']")  # again: the other way round
        assert rows(browser) == expected_order(url, sort, descending=False), sort
    assert "sort=median_settle_seconds" in browser.current_url and "order=asc" in browser.current_url


def test_the_windows_change_the_signals_and_keep_the_sort(browser, busy_hub):
    base, url = busy_hub
    browser.get(base + "/?sort=callers")
    follow(browser, "a[data-window='7d']")
    assert "window=7d" in browser.current_url and "sort=callers" in browser.current_url
    assert rows(browser) == expected_order(url, "callers", "7d")
    engine = open_database(url)
    with engine.connect() as db:
        top = signals.list_models(db, NOW, sort="callers", window="7d", limit=1)[0]
    first = f"#models tr[data-model='{top.model_id}']"
    assert cell(browser, first, "callers") == f"{top.signals.callers:,}"
    assert cell(browser, first, "revenue") == tokens(top.signals.revenue)


def test_search_finds_models_by_name_and_owner(browser, busy_hub):
    base, url = busy_hub
    browser.get(base + "/")
    search(browser, "WINE")
    assert rows(browser) == expected_order(url, "calls", search="wine") != []
    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#models a.name")]
    assert all("wine" in name for name in names)
    assert f"{len(names)} models matching" in browser.find_element(By.ID, "model-count").text
    browser.get(base + "/?search=no-such-model")
    assert rows(browser) == [] and "No model matches" in browser.find_element(By.ID, "models").text


def test_the_list_pages_through_every_model(browser, busy_hub):
    base, url = busy_hub
    browser.get(base + "/?limit=25")
    seen = rows(browser)
    while browser.find_elements(By.CSS_SELECTOR, "a[rel='next']"):
        follow(browser, "a[rel='next']")
        seen += rows(browser)
    assert sorted(seen) == list(range(1, 61)) and len(seen) == 60


def test_sorting_and_searching_work_without_javascript(busy_hub):
    base, url = busy_hub
    plain = new_browser(javascript=False)
    try:
        plain.get(base + "/")
        follow(plain, "th a[data-sort='revenue']")
        assert rows(plain) == expected_order(url, "revenue")
        search(plain, "iris")
        assert "sort=revenue" in plain.current_url  # the search keeps the sort
        assert rows(plain) == expected_order(url, "revenue", search="iris") != []
    finally:
        plain.quit()


# ---------------------------------------------------------------- a model's page


def test_a_model_page_shows_its_card_tensors_example_and_calls(browser, small_hub, store):
    base, _ = small_hub
    browser.get(base + "/models/1")
    assert browser.find_element(By.ID, "model-name").text.startswith("iris-classifier")
    assert "Iris species classifier" in browser.find_element(By.ID, "card-description").text
    assert browser.find_element(By.ID, "model-cid").text == store[1].cid
    tensors = [[td.text for td in row.find_elements(By.TAG_NAME, "td")]
               for row in browser.find_elements(By.CSS_SELECTOR, "#tensors tbody tr")]
    assert tensors[0] == ["input", "X", "tensor(float)", "[N, 4]"]  # as the ONNX file declares it
    assert [t[:3] for t in tensors[1:]] == [["output", "label", "tensor(int64)"],
                                             ["output", "probabilities", "seq(map(int64,tensor(float)))"]]
    example = json.loads(browser.find_element(By.ID, "example-input").text)
    assert example == json.loads((IRIS / "input.json").read_text())  # the card's own example
    cli = browser.find_element(By.ID, "call-cli").text
    assert cli.startswith("modelhub infer 1 '{\"X\": [[5.1, 3.5, 1.4, 0.2]") and cli.endswith("--max-price 10000000000000000wei")
    assert "--fast" in browser.find_element(By.ID, "call-cli-fast").text
    sdk = browser.find_element(By.ID, "call-sdk").text
    assert "hub.request(1, {\"X\": [[5.1, 3.5, 1.4, 0.2]" in sdk and "max_price=10000000000000000" in sdk


def test_a_model_page_shows_the_index_numbers(browser, small_hub):
    base, url = small_hub
    browser.get(base + "/models/1")
    engine = open_database(url)
    with engine.connect() as db:
        want = {window: signals.model_signals(db, 1, NOW_40, window) for window in WINDOWS}
    engine.dispose()
    assert (want["all"].calls, want["all"].callers, want["all"].repeat_callers) == (3 + 4, 3, 1)
    for window, got in want.items():
        row = f"#signals tr[data-window='{window}']"
        assert cell(browser, row, "calls") == f"{got.calls:,}"
        assert cell(browser, row, "revenue") == tokens(got.revenue)
        assert cell(browser, row, "callers") == str(got.callers)
        assert cell(browser, row, "repeat_callers") == str(got.repeat_callers)
    assert cell(browser, "#signals tr[data-window='all']", "success_rate") == "75.0%"  # 3 of 4 ended on chain
    assert cell(browser, "#signals tr[data-window='all']", "median_settle_seconds") == "40 s"
    assert cell(browser, "#signals tr[data-window='7d']", "calls") == "4"  # only the receipt is that recent


def test_the_charts_have_a_point_per_day_and_the_index_values(browser, small_hub):
    base, _ = small_hub
    browser.get(base + "/models/1")
    calls, revenue, earned = chart(browser, "calls"), chart(browser, "revenue"), chart(browser, "earned")
    # from the first settlement day (T0 + 10) to the cursor's day (T0 + 40), quiet days as zeros
    assert len(calls["values"]) == len(revenue["values"]) == 31
    assert (calls["type"], revenue["type"]) == ("bar", "line")
    assert calls["values"][0] == 2 and calls["values"][2] == 1 and calls["values"][28] == 4 and sum(calls["values"]) == 7
    assert revenue["values"][28] == pytest.approx(0.04)
    assert calls["labels"][0] == "2027-01-25" and calls["labels"][-1] == "2027-02-24"
    # who earned what: the payees' 60/40 of 85 %, the relayer's 10 %, the treasury's 5 %
    parts = dict(zip(earned["labels"], earned["values"]))
    assert sorted(parts.values(), reverse=True) == pytest.approx([0.0357, 0.0238, 0.007, 0.0035])
    amounts = [int(td.get_attribute("data-amount")) for td in browser.find_elements(By.CSS_SELECTOR, "#earned td[data-amount]")]
    assert sum(amounts) == 7 * 10**16  # the parts sum to what the callers paid


def test_a_model_whose_file_is_not_at_hand_says_so(browser, small_hub):
    base, _ = small_hub
    browser.get(base + "/models/3")
    assert "not in this hub's model store" in browser.find_element(By.ID, "tensors-problem").text
    assert "no card" in browser.find_element(By.ID, "card-problem").text
    assert browser.find_element(By.ID, "model-name").text.startswith("digits <b>bold</b>")  # escaped, not markup
    assert chart(browser, "calls")["values"] == [1, 0]  # one call on its first day, then the cursor's day
    browser.get(base + "/models/2")
    assert "https://example.org/wine" in browser.find_element(By.ID, "card-problem").text
    assert chart(browser, "calls") is not None and chart(browser, "calls")["values"] == []


def test_the_api_serves_the_card_the_page_shows(small_hub, store):
    base, _ = small_hub
    card = requests.get(f"{base}/api/models/1/card", timeout=10).json()
    assert card["cid"] == store[1].cid and card["example_source"] == "card"
    assert card["inputs"] == [{"name": "X", "type": "tensor(float)", "shape": ["N", 4]}]


# ---------------------------------------------------------------- the other pages


def test_leaderboards_rank_as_the_list_does(browser, busy_hub):
    base, url = busy_hub
    browser.get(base + "/leaderboards")
    calls_7d = [int(li.get_attribute("data-model")) for li in
                browser.find_elements(By.CSS_SELECTOR, "[data-board='calls-7d'] li[data-model]")]
    assert calls_7d == expected_order(url, "calls", "7d")[:10]
    relayers = browser.find_elements(By.CSS_SELECTOR, "[data-board='relayers'] li[data-relayer]")
    engine = open_database(url)
    with engine.connect() as db:
        top = signals.top_relayers(db)
        served = [signals.relayer_page(db, r["relayer"])["calls_served"] for r in top]
    engine.dispose()
    assert [li.get_attribute("data-relayer") for li in relayers] == [r["relayer"] for r in top]
    assert served == sorted(served, reverse=True)
    follow(browser, "[data-board='earners'] li a")
    assert "/accounts/0x" in browser.current_url


def test_account_and_relayer_pages_show_the_index_numbers(browser, small_hub):
    base, url = small_hub
    engine = open_database(url)
    with engine.connect() as db:
        owner, relayer = signals.account_page(db, OWNER), signals.relayer_page(db, RELAYER)
    engine.dispose()
    browser.get(f"{base}/accounts/{OWNER}")
    assert browser.find_element(By.CSS_SELECTOR, "[data-earned='payee']").text == tokens(owner["earned"]["payee"])
    assert len(chart(browser, "earned")["values"]) == 31
    browser.get(f"{base}/relayers/{RELAYER}")
    assert browser.find_element(By.ID, "calls-served").text == str(relayer["calls_served"]) == "8"
    assert browser.find_element(By.ID, "calls-rejected").text == "1"
    assert browser.find_element(By.ID, "relayer-earned").text == tokens(relayer["earned"])


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("path, api, status, phrase", [
    ("/models/99", "/api/models/99", 404, "no model 99 in the index"),
    ("/models/zero", "/api/models/zero", 400, "a model id is a positive integer"),
    ("/accounts/0x00000000000000000000000000000000000000ff", "/api/accounts/0x00000000000000000000000000000000000000ff",
     404, "no account"),
    ("/relayers/0x00000000000000000000000000000000000000ff", "/api/relayers/0x00000000000000000000000000000000000000ff",
     404, "no relayer"),
    ("/accounts/not-an-address", "/api/accounts/not-an-address", 400, "not an address"),
    ("/?sort=popularity", "/api/models?sort=popularity", 400, "sort must be one of calls, revenue"),
    ("/?window=1y", "/api/models?window=1y", 400, "window must be one of all, 7d, 30d"),
    ("/?limit=100000", "/api/models?limit=100000", 400, "limit must be an integer from 1 to 500"),
    ("/?order=sideways", "/api/models?order=sideways", 400, "order must be asc or desc"),
    ("/?search=" + "x" * 101, "/api/models?search=" + "x" * 101, 400, "search must be at most 100 characters"),
    ("/no/such/page", "/api/no/such/page", 404, "Not Found"),
])
def test_bad_input_gets_a_page_saying_what_was_wrong(browser, small_hub, path, api, status, phrase):
    base, _ = small_hub
    browser.get(base + path)
    assert phrase in browser.find_element(By.ID, "error-message").text
    assert requests.get(base + path, timeout=10).status_code == status
    answer = requests.get(base + api, timeout=10)  # the API says the same, as JSON
    assert answer.status_code == status and phrase in answer.json()["error"]


def test_without_chart_js_the_page_says_how_to_get_it(small_hub, browser):
    _, url = small_hub
    with hub_server(url, env={"MODELHUB_CHART_JS": "/nonexistent/chart.umd.js"}) as base:
        browser.get(base + "/models/1")
        notes = " ".join(n.text for n in browser.find_elements(By.CSS_SELECTOR, "figure.chart .note"))
        assert "Chart.js is not installed" in notes and "npm ci" in notes
        assert requests.get(base + "/static/chart.umd.js", timeout=5).status_code == 404


def test_an_index_of_another_deployment_is_a_503_and_stays_as_it_was(browser, small_hub, tmp_path, monkeypatch):
    _, url = small_hub
    (tmp_path / "31337.json").write_text(json.dumps({
        "chainId": 31337, "token": "0x" + "01" * 20, "ModelRegistry": "0x" + "02" * 20,
        "RelayerRegistry": "0x" + "03" * 20, "InferenceEscrow": "0x" + "04" * 20, "startBlock": 1}))
    before = Path(url.removeprefix("sqlite:///")).read_bytes()
    with hub_server(url, "--chain-id", "31337", env={"MODELHUB_DEPLOYMENTS": str(tmp_path)}) as base:
        browser.get(base + "/")
        message = browser.find_element(By.ID, "error-message").text
        assert "holds chain 1" in message and "not this hub's chain 31337" in message
        response = requests.get(base + "/api/models", timeout=5)
        assert response.status_code == 503 and "holds chain 1" in response.json()["error"]
    assert Path(url.removeprefix("sqlite:///")).read_bytes() == before


def test_a_database_that_goes_down_is_a_503_page_not_a_crash(browser):
    with postgres_server() as url:
        engine = open_database(url)
        bind(engine, 1, "0x" + "0" * 40, 1)
        engine.dispose()
        with hub_server(url) as base:
            browser.get(base + "/")
            assert rows(browser) == []
            stop_postgres(url)
            browser.get(base + "/")
            assert "the index database cannot be read" in browser.find_element(By.ID, "error-message").text
            browser.get(base + "/models/1")
            assert "cannot be read" in browser.find_element(By.ID, "error-message").text
            assert requests.get(base + "/", timeout=30).status_code == 503


def test_the_definitions_on_the_pages_and_in_the_docs_are_the_signals_own(browser, small_hub):
    base, _ = small_hub
    browser.get(base + "/signals")
    shown = {dt.text: dd.text for dt, dd in zip(browser.find_elements(By.CSS_SELECTOR, "#definitions dt"),
                                                 browser.find_elements(By.CSS_SELECTOR, "#definitions dd"))}
    assert shown == signals.DEFINITIONS
    docs = " ".join((ROOT / "docs" / "hub.md").read_text().split())
    for key, text in signals.DEFINITIONS.items():
        assert f"`{key}`: {text}" in docs, key
