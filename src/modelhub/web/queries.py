"""The data behind each view of the hub, one function per view, called by the JSON API and by
the pages alike, so both show the same numbers from the same signals (indexer/signals.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection, Row

from ..indexer import signals
from .reading import ListQuery

# The model boards of the leaderboards page: (title, sort, window).
MODEL_BOARDS = (
    ("Most paid calls, last 7 days", "calls", "7d"),
    ("Most revenue, last 30 days", "revenue", "30d"),
    ("Most repeat callers, last 30 days", "repeat_callers", "30d"),
    ("Most organic calls, all time", "organic_calls", "all"),
)
BOARD_SIZE = 10


def status(db: Connection, cursor: Row) -> dict[str, Any]:
    return {"chainId": cursor.chain_id, "escrow": cursor.escrow, "block": cursor.block, "time": cursor.time}


def models(db: Connection, cursor: Row, query: ListQuery) -> dict[str, Any]:
    found = signals.list_models(db, cursor.time or 0, sort=query.sort, window=query.window, search=query.search,
                                limit=query.limit, offset=query.offset, descending=query.order == "desc")
    return {"sort": query.sort, "window": query.window, "order": query.order, "limit": query.limit,
            "offset": query.offset, "search": query.search, "total": signals.count_models(db, query.search),
            "models": [m.as_json() for m in found]}


def model(db: Connection, cursor: Row, model_id: int) -> dict[str, Any]:
    return signals.model_page(db, model_id, cursor.time or 0)


def leaderboards(db: Connection, cursor: Row) -> dict[str, Any]:
    boards = []
    for title, sort, window in MODEL_BOARDS:
        top = signals.list_models(db, cursor.time or 0, sort=sort, window=window, limit=BOARD_SIZE)
        boards.append({"title": title, "sort": sort, "window": window, "models": [m.as_json() for m in top]})
    return {"models": boards, "relayers": signals.top_relayers(db, BOARD_SIZE),
            "earners": signals.top_earners(db, BOARD_SIZE)}


def account(db: Connection, cursor: Row, address: str) -> dict[str, Any]:
    return signals.account_page(db, address)


def relayer(db: Connection, cursor: Row, address: str) -> dict[str, Any]:
    page = signals.relayer_page(db, address)
    try:
        page["earned_daily"] = signals.account_page(db, address)["earned_daily"]
    except signals.UnknownEntityError:  # a relayer that never earned nor paid anything
        page["earned_daily"] = []
    return page
