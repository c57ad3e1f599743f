"""The hub's web application: the JSON API under /api/ and the pages beside it, one server over
one index database; errors become JSON for the API and a page for people, with the same message.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from aiohttp import web
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from ..indexer.signals import UnknownEntityError
from ..store import ModelStore
from . import api, pages
from .card import Cards
from .reading import BadQuery, IndexReader, IndexUnavailable

log = logging.getLogger("modelhub.web")

ROOT = Path(__file__).resolve().parents[3]
CHART_JS = Path("node_modules/chart.js/dist/chart.umd.js")  # npm's chart.js, pinned in package.json


def find_chart_js() -> Path | None:
    """Chart.js at $MODELHUB_CHART_JS when that is set, else in the project's node_modules or the
    working folder's."""
    if os.environ.get("MODELHUB_CHART_JS"):
        candidates = [Path(os.environ["MODELHUB_CHART_JS"])]
    else:
        candidates = [ROOT / CHART_JS, Path.cwd() / CHART_JS]
    return next((path for path in candidates if path.is_file()), None)


def create_app(engine: Engine, *, store: Path | None = None, fetch_from: tuple[str, ...] = (),
               cards: Path | None = None, expect: tuple[int, str] | None = None,
               chain_url: str | None = None) -> web.Application:
    """The hub over one index database. `store`: the folder of model files (ModelStore) the model
    cards read tensors from; `fetch_from`: relayer URLs to fetch missing files from; `cards`: the
    folder file:// model cards are read from; `expect`: (chain id, escrow) the index must hold;
    `chain_url`: the node URL shown in the calls to make."""
    reader = IndexReader(engine, expect)
    model_cards = Cards(ModelStore(store) if store else None, fetch_from, cards, chain_url)
    chart_js = find_chart_js()
    if chart_js is None:
        log.warning("Chart.js not found (%s): the pages show no charts; run `npm ci` in the project", CHART_JS)
    app = web.Application(middlewares=[_errors])
    api.add_routes(app, reader, model_cards)
    pages.add_routes(app, reader, model_cards, chart_js)
    return app


@web.middleware
async def _errors(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadQuery as error:
        status, message = 400, str(error)
    except UnknownEntityError as error:
        status, message = 404, str(error)
    except IndexUnavailable as error:
        status, message = 503, str(error)
    except SQLAlchemyError as error:
        status = 503
        message = f"the index database cannot be read: {str(getattr(error, 'orig', error)).strip().splitlines()[0]}"
    except web.HTTPException as error:
        if error.status < 400:
            raise
        status, message = error.status, error.reason
    if request.path.startswith("/api/"):
        return web.json_response({"error": message}, status=status)
    return pages.error_page(status, message)
