"""The hub's pages for people: the model list (search, sort by every signal), a model's page
(card, tensors, calls to make, charts), leaderboards, account and relayer pages, and error pages.

Server-rendered with Jinja2 (autoescaped) from the same data as the JSON API (queries.py);
everything works without JavaScript except the charts, drawn by Chart.js from data in the page.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..indexer import WINDOWS
from ..indexer.signals import DEFINITIONS
from . import queries
from .card import TOKEN_DECIMALS, Cards
from .reading import IndexReader, ListQuery, address, model_id, off_loop

HERE = Path(__file__).resolve().parent
DAY = 86_400
SIGNAL_COLUMNS = (  # (sort key, heading) of each signal, in the order of templates/cells.html
    ("calls", "Calls"), ("revenue", "Revenue"), ("callers", "Callers"), ("repeat_callers", "Repeat"),
    ("organic_calls", "Organic"), ("success_rate", "Success"), ("median_settle_seconds", "Median settle"),
    ("relayers", "Relayers"),
)
COLUMNS = (*SIGNAL_COLUMNS, ("price", "Price"))  # the list's: every column sorts it
WINDOW_NAMES = {"all": "all time", "30d": "last 30 days", "7d": "last 7 days"}


def add_routes(app: web.Application, reader: IndexReader, cards: Cards, chart_js: Path | None) -> None:
    view = _Pages(reader, cards, chart_js)
    app.router.add_get("/", view.models)
    app.router.add_get("/models/{model_id}", view.model)
    app.router.add_get("/leaderboards", view.leaderboards)
    app.router.add_get("/accounts/{address}", view.account)
    app.router.add_get("/relayers/{address}", view.relayer)
    app.router.add_get("/signals", view.signals)
    app.router.add_get("/static/chart.umd.js", view.chart_js)
    app.router.add_static("/static/", HERE / "static", append_version=False)


def error_page(status: int, message: str) -> web.Response:
    return _html(_render("error.html", status=status, message=message, title=f"{status} error"), status)


class _Pages:
    def __init__(self, reader: IndexReader, cards: Cards, chart_js: Path | None) -> None:
        self.reader, self.cards, self.chart_file = reader, cards, chart_js

    async def models(self, request: web.Request) -> web.Response:
        query = ListQuery.parse(request.query)
        status, found = await self.reader.read(lambda db, c: (queries.status(db, c), queries.models(db, c, query)))
        return self._page("models.html", status, title="Models", q=query, found=found, columns=COLUMNS,
                          link=lambda **changes: _link("/", query.params(**changes)))

    async def model(self, request: web.Request) -> web.Response:
        wanted = model_id(request.match_info["model_id"])
        status, page = await self.reader.read(lambda db, c: (queries.status(db, c), queries.model(db, c, wanted)))
        card = await off_loop(self.cards.card, page)
        daily, earned = _daily(page["daily"], status["time"]), _earned(page["earned"])
        charts = {
            "calls": _series(daily, "calls", "Paid calls per day", "bar"),
            "revenue": _series(daily, "revenue", "Revenue per day (tokens)", "line", as_tokens=True),
            "earned": {"type": "bar", "labels": [f"{r['role']} {short(r['account'])}" for r in earned],
                       "label": "Earned (tokens)", "values": [_token_number(r["amount"]) for r in earned]},
        }
        return self._page("model.html", status, title=page["model"]["name"], page=page, card=card, daily=daily,
                          earned=earned, charts=charts)

    async def leaderboards(self, request: web.Request) -> web.Response:
        status, boards = await self.reader.read(lambda db, c: (queries.status(db, c), queries.leaderboards(db, c)))
        return self._page("leaderboards.html", status, title="Leaderboards", boards=boards)

    async def account(self, request: web.Request) -> web.Response:
        return await self._earner(request, "account.html", "Account", queries.account)

    async def relayer(self, request: web.Request) -> web.Response:
        return await self._earner(request, "relayer.html", "Relayer", queries.relayer)

    async def _earner(self, request: web.Request, template: str, kind: str, fetch) -> web.Response:
        """An account's or a relayer's page, with the chart of what it earned per day."""
        wanted = address(request.match_info["address"])
        status, page = await self.reader.read(lambda db, c: (queries.status(db, c), fetch(db, c, wanted)))
        daily = _dense(page["earned_daily"], "amount", status["time"])
        return self._page(template, status, title=f"{kind} {wanted}", page=page,
                          charts={"earned": _series(daily, "amount", "Earned per day (tokens)", "bar", as_tokens=True)})

    async def signals(self, request: web.Request) -> web.Response:
        status = await self.reader.read(queries.status)
        return self._page("signals.html", status, title="What the signals mean")

    async def chart_js(self, request: web.Request) -> web.StreamResponse:
        if self.chart_file is None:
            raise web.HTTPNotFound(reason="Chart.js is not installed: run `npm ci` in the project (node_modules)")
        return web.FileResponse(self.chart_file, headers={"Cache-Control": "public, max-age=86400"})

    def _page(self, template: str, status: dict, **context: Any) -> web.Response:
        return _html(_render(template, index=status, charts_on=self.chart_file is not None, **context))


# ---------------------------------------------------------------- rendering

_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True)


def _render(template: str, **context: Any) -> str:
    return _env.get_template(template).render(**context)


# Only the hub's own files run or style a page: a model card's text is escaped, and even so
# nothing it could smuggle in would load or run.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8",
                        headers=SECURITY_HEADERS)


def _link(path: str, params: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return path + ("?" + urlencode(params) if params else "")


def tokens(amount: Any) -> str:
    """Base units as tokens of TOKEN_DECIMALS decimals, exactly: 1500000000000000000 -> 1.5."""
    value = Decimal(int(amount)).scaleb(-TOKEN_DECIMALS)
    text = f"{value:,.{TOKEN_DECIMALS}f}".rstrip("0").rstrip(".")
    return text or "0"


def count(value: Any) -> str:
    return f"{int(value):,}"


def percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1%}"


def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:g} s"


def date(timestamp: Any) -> str:
    return dt.datetime.fromtimestamp(int(timestamp), dt.timezone.utc).strftime("%Y-%m-%d")


def moment(timestamp: Any) -> str:
    if not timestamp:
        return "–"
    return dt.datetime.fromtimestamp(int(timestamp), dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def short(account: str | None) -> str:
    return "–" if not account else f"{account[:6]}…{account[-4:]}"


_env.filters.update(tokens=tokens, count=count, percent=percent, seconds=seconds, date=date, moment=moment,
                    short=short)
_env.globals.update(definitions=DEFINITIONS, windows=WINDOWS, window_names=WINDOW_NAMES, signal_columns=SIGNAL_COLUMNS)


# ---------------------------------------------------------------- chart data


def _dense(points: list[dict], value: str, now: Any) -> list[dict]:
    """Daily points with the days between them (and up to `now`'s day) filled with zeros: a chart
    of calls per day shows a quiet day as a zero, not as nothing."""
    if not points:
        return []
    have = {int(p["day"]) // DAY: int(p[value]) for p in points}
    first, last = min(have), max(max(have), int(now or 0) // DAY)
    return [{"day": day * DAY, value: have.get(day, 0)} for day in range(first, last + 1)]


def _daily(points: list[dict], now: Any) -> list[dict]:
    calls = {p["day"]: p for p in _dense(points, "calls", now)}
    revenue = {p["day"]: p["revenue"] for p in _dense(points, "revenue", now)}
    return [{"day": day, "calls": p["calls"], "revenue": revenue[day]} for day, p in calls.items()]


def _series(points: list[dict], value: str, label: str, kind: str, as_tokens: bool = False) -> dict[str, Any]:
    """A chart's data: one point per day."""
    values = [_token_number(p[value]) if as_tokens else int(p[value]) for p in points]
    return {"type": kind, "labels": [date(p["day"]) for p in points], "label": label, "values": values}


def _token_number(amount: Any) -> float:
    return float(Decimal(int(amount)).scaleb(-TOKEN_DECIMALS))


def _earned(rows: list[dict]) -> list[dict]:
    """Who earned what from a model, largest first, each with its share of the total."""
    total = sum(int(r["amount"]) for r in rows) or 1
    ranked = sorted(rows, key=lambda r: (-int(r["amount"]), r["role"], r["account"]))
    return [{**r, "share": int(r["amount"]) / total} for r in ranked]
