"""The hub's JSON API (`modelhub hub serve`): the index's signals for programs and agents, the
same data the pages show (queries.py), read from the database `modelhub index` keeps in step.

GET /api/status, /api/models?sort=&window=&search=&limit=&offset=&order=, /api/models/{id},
/api/models/{id}/card, /api/leaderboards, /api/accounts/{address}, /api/relayers/{address}.
Amounts beyond 2**53 are decimal strings. Errors are JSON {"error": ...} (app.py): 400 for
malformed parameters, 404 for unknown entities, 503 when the database cannot be read.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import queries
from .card import Cards
from .reading import IndexReader, ListQuery, address, model_id, off_loop


def add_routes(app: web.Application, reader: IndexReader, cards: Cards) -> None:
    api = _Api(reader, cards)
    app.router.add_get("/api/status", api.status)
    app.router.add_get("/api/models", api.models)
    app.router.add_get("/api/models/{model_id}", api.model)
    app.router.add_get("/api/models/{model_id}/card", api.card)
    app.router.add_get("/api/leaderboards", api.leaderboards)
    app.router.add_get("/api/accounts/{address}", api.account)
    app.router.add_get("/api/relayers/{address}", api.relayer)


class _Api:
    def __init__(self, reader: IndexReader, cards: Cards) -> None:
        self.reader = reader
        self.cards = cards

    async def status(self, request: web.Request) -> web.Response:
        return _json(await self.reader.read(queries.status))

    async def models(self, request: web.Request) -> web.Response:
        query = ListQuery.parse(request.query)
        return _json(await self.reader.read(lambda db, c: queries.models(db, c, query)))

    async def model(self, request: web.Request) -> web.Response:
        wanted = model_id(request.match_info["model_id"])
        return _json(await self.reader.read(lambda db, c: queries.model(db, c, wanted)))

    async def card(self, request: web.Request) -> web.Response:
        wanted = model_id(request.match_info["model_id"])
        page = await self.reader.read(lambda db, c: queries.model(db, c, wanted))
        return _json((await off_loop(self.cards.card, page)).as_json())

    async def leaderboards(self, request: web.Request) -> web.Response:
        return _json(await self.reader.read(queries.leaderboards))

    async def account(self, request: web.Request) -> web.Response:
        wanted = address(request.match_info["address"])
        return _json(await self.reader.read(lambda db, c: queries.account(db, c, wanted)))

    async def relayer(self, request: web.Request) -> web.Response:
        wanted = address(request.match_info["address"])
        return _json(await self.reader.read(lambda db, c: queries.relayer(db, c, wanted)))


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)
