"""The hub's JSON API (`modelhub hub serve`): the index's signals for programs and agents, read
from the database `modelhub index` keeps in step with the chain.

GET /api/status, /api/models?sort=&window=&search=&limit=&offset=&order=, /api/models/{id},
/api/accounts/{address}, /api/relayers/{address}. Amounts beyond 2**53 are decimal strings.
Errors are JSON {"error": ...}: 400 for malformed parameters, 404 for unknown entities, 503 when
the database cannot be read.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from ..indexer import SORT_KEYS, WINDOWS, signals
from ..indexer import schema as t

ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def create_app(engine: Engine) -> web.Application:
    """The API over one index database."""
    api = _Api(engine)
    app = web.Application(middlewares=[_errors])
    app.router.add_get("/api/status", api.status)
    app.router.add_get("/api/models", api.models)
    app.router.add_get("/api/models/{model_id}", api.model)
    app.router.add_get("/api/accounts/{address}", api.account)
    app.router.add_get("/api/relayers/{address}", api.relayer)
    return app


class _Api:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def _read(self, work) -> Any:
        """Runs `work(connection, now)` off the event loop: SQLAlchemy Core is synchronous."""

        def run():
            with self.engine.connect() as db:
                cursor = db.execute(select(t.cursor)).first()
                if cursor is None:
                    raise web.HTTPServiceUnavailable(reason="the index is empty: run `modelhub index` first")
                return work(db, cursor)

        return await asyncio.get_running_loop().run_in_executor(None, run)

    async def status(self, request: web.Request) -> web.Response:
        cursor = await self._read(lambda db, c: c)
        return _json({"chainId": cursor.chain_id, "escrow": cursor.escrow, "block": cursor.block,
                      "time": cursor.time})

    async def models(self, request: web.Request) -> web.Response:
        query = request.query
        sort = query.get("sort", "calls")
        window = query.get("window", "all")
        order = query.get("order", "desc")
        if sort not in SORT_KEYS:
            raise _bad(f"sort must be one of {', '.join(SORT_KEYS)}, not {sort!r}")
        if window not in WINDOWS:
            raise _bad(f"window must be one of {', '.join(WINDOWS)}, not {window!r}")
        if order not in ("asc", "desc"):
            raise _bad(f"order must be asc or desc, not {order!r}")
        limit = _int(query, "limit", 50, 1, 500)
        offset = _int(query, "offset", 0, 0, 10**9)
        search = query.get("search") or None
        found = await self._read(lambda db, c: signals.list_models(
            db, c.time or 0, sort=sort, window=window, search=search, limit=limit, offset=offset,
            descending=order == "desc"))
        return _json({"sort": sort, "window": window, "order": order, "limit": limit, "offset": offset,
                      "models": [m.as_json() for m in found]})

    async def model(self, request: web.Request) -> web.Response:
        text = request.match_info["model_id"]
        if not text.isdigit() or int(text) == 0:
            raise _bad(f"a model id is a positive integer, not {text!r}")
        return _json(await self._read(lambda db, c: signals.model_page(db, int(text), c.time or 0)))

    async def account(self, request: web.Request) -> web.Response:
        address = _address(request)
        return _json(await self._read(lambda db, c: signals.account_page(db, address)))

    async def relayer(self, request: web.Request) -> web.Response:
        address = _address(request)
        return _json(await self._read(lambda db, c: signals.relayer_page(db, address)))


@web.middleware
async def _errors(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as error:
        return _json({"error": error.reason}, status=error.status)
    except signals.UnknownEntityError as error:
        return _json({"error": str(error)}, status=404)
    except SQLAlchemyError as error:
        message = str(getattr(error, "orig", error)).strip().splitlines()[0]
        return _json({"error": f"the index database cannot be read: {message}"}, status=503)


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(reason=message)


def _int(query: Any, name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise _bad(f"{name} must be an integer from {low} to {high}, not {text!r}")
    return int(text)


def _address(request: web.Request) -> str:
    text = request.match_info["address"]
    if not ADDRESS.match(text):
        raise _bad(f"not an address (0x and 40 hex digits): {text!r}")
    return text.lower()


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)
