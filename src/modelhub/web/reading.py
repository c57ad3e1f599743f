"""What the hub's JSON API and its pages share: reading the index off the event loop, as of its
cursor, and the query parameters both take, checked by the same rules with the same messages."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine, Row

from ..indexer import SORT_KEYS, WINDOWS
from ..indexer import schema as t

ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
T = TypeVar("T")


class BadQuery(ValueError):
    """A malformed parameter (HTTP 400); the message says what was wrong and what fits."""


class IndexUnavailable(RuntimeError):
    """The index cannot answer (HTTP 503): empty, or another deployment's."""


@dataclass(frozen=True)
class ListQuery:
    """The model list's parameters: /api/models and the list page take the same ones."""

    sort: str = "calls"
    window: str = "all"
    order: str = "desc"
    limit: int = 50
    offset: int = 0
    search: str | None = None

    @classmethod
    def parse(cls, query: Mapping[str, str], limit: int = 50) -> "ListQuery":
        sort = query.get("sort", "calls")
        window = query.get("window", "all")
        order = query.get("order", "desc")
        if sort not in SORT_KEYS:
            raise BadQuery(f"sort must be one of {', '.join(SORT_KEYS)}, not {sort!r}")
        if window not in WINDOWS:
            raise BadQuery(f"window must be one of {', '.join(WINDOWS)}, not {window!r}")
        if order not in ("asc", "desc"):
            raise BadQuery(f"order must be asc or desc, not {order!r}")
        search = (query.get("search") or "").strip() or None
        if search is not None and len(search) > 100:
            raise BadQuery(f"search must be at most 100 characters, not {len(search)}")
        return cls(sort, window, order, _int(query, "limit", limit, 1, 500), _int(query, "offset", 0, 0, 10**9),
                   search)

    def params(self, **changes: Any) -> dict[str, str]:
        """These parameters (with `changes`) as a query string's fields, defaults left out."""
        fields = {**self.__dict__, **changes}
        defaults = ListQuery(limit=self.limit).__dict__
        return {k: str(v) for k, v in fields.items() if v is not None and v != defaults[k]}


def model_id(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise BadQuery(f"a model id is a positive integer, not {text!r}")
    return int(text)


def address(text: str) -> str:
    if not ADDRESS.match(text):
        raise BadQuery(f"not an address (0x and 40 hex digits): {text!r}")
    return text.lower()


def _int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise BadQuery(f"{name} must be an integer from {low} to {high}, not {text!r}")
    return int(text)


async def off_loop(work: Callable[..., T], *args: Any) -> T:
    """`work(*args)` in a worker thread, for blocking work (the database, files, other hosts)."""
    return await asyncio.get_running_loop().run_in_executor(None, work, *args)


class IndexReader:
    """Reads one index database for the hub; with `expect` (chain id, escrow address), refuses an
    index of another deployment. It only reads: nothing the hub serves changes the database."""

    def __init__(self, engine: Engine, expect: tuple[int, str] | None = None) -> None:
        self.engine = engine
        self.expect = (expect[0], expect[1].lower()) if expect else None

    async def read(self, work: Callable[[Connection, Row], T]) -> T:
        """Runs `work(connection, cursor)` in a worker thread: SQLAlchemy Core is synchronous."""
        return await off_loop(self.read_now, work)

    def read_now(self, work: Callable[[Connection, Row], T]) -> T:
        with self.engine.connect() as db:
            cursor = db.execute(select(t.cursor)).first()
            if cursor is None:
                raise IndexUnavailable("the index is empty: run `modelhub index` first")
            if self.expect and (cursor.chain_id, cursor.escrow) != self.expect:
                raise IndexUnavailable(
                    f"the index database holds chain {cursor.chain_id}, escrow {cursor.escrow}, not this hub's "
                    f"chain {self.expect[0]}, escrow {self.expect[1]}: point --db at this deployment's index "
                    "(nothing was changed)")
            return work(db, cursor)
