"""The relayer's HTTP API (aiohttp): health, Prometheus metrics, model file upload and download,
and each call's output with its signed attestation. `HttpServer` runs it in a background thread.

Routes (the first five are fixed by the public interface):

    GET  /healthz                        200 {"status": "ok", ...status()}; 503 if status() fails
    GET  /metrics                        200 Prometheus text format 0.0.4
    POST /v1/artifacts                   200 {"cid", "digest", "size"}; 400 empty; 413 too large;
                                         415 multipart form (send the raw bytes); 403 code
                                         "not_registered": no model version has this digest
                                         (as its file, or as its card's ipfs:// CID)
    GET  /v1/artifacts/{cid}             200 the bytes; 400 malformed CID; 404 unknown;
                                         500 the stored copy no longer matches its CID
    GET  /v1/requests/{requestId}        200 {"requestId", "status", "output", "outputHash",
                                         "attestation", "signature"}; 202 answered, settling (no
                                         output yet); 400 malformed id; 404 unseen
    GET  /v1/requests/{requestId}/output 200 the exact canonical output bytes (keccak-256 of
                                         them is `outputHash`); 409 answered, settling; 404
                                         unseen or not answered
    POST /v1/models/{modelId}/infer      a fast call paid with a signed receipt (docs/fast-calls.md):
                                         200 output and signed attestation; errors carry a "code"
    GET  /v1/channels/{caller}/{modelId} this relayer's view of a receipt channel

Choices a client can rely on:

* Every error is JSON `{"error": "..."}` with a message saying what to do; never a traceback.
  Fast-call errors add `"code"` and the fields docs/fast-calls.md lists for that code.
* An upload answers 200 with the same body every time the same bytes are sent (not 201 the
  first time): "the same bytes always give the same answer", and a retry after a lost reply
  cannot be told from the first try anyway. The size limit is the store's `max_size`, enforced
  while the body streams in (and before it is sent, for clients using `Expect: 100-continue`).
* `requestId` is answered as a decimal *string*, in the body and in `attestation`. Request ids
  are uint256 values around 2**254, and JavaScript's `JSON.parse` (so ethers, browsers, most
  dashboards) turns any JSON number above 2**53 into a rounded float: a number would hand JS
  clients a different request id. `BigInt("…")` reads the string exactly. Small fields
  (`modelId`, `version`, `rejectReason`) stay numbers. In the path, ids are decimal or 0x-hex.
* An output is published only once this relayer's attestation has settled on chain, i.e. once
  the call is paid (status "settled"). Before that (status "answered": settling) the answer is
  202 with `output`, `outputHash`, `attestation` and `signature` null and `"settling": true`:
  an answer out before settlement could be read by anyone and the request left unpaid.
  While a call is not answered, those fields are null too.
* Uploads: a file is stored only if its sha-256 is the digest of a registered model version
  (registerModel / publishVersion first, then upload), or that of the model card a version's
  metadata URI names by content (`ipfs://<CID>`, raw sha2-256: jurors read its tolerance):
  nobody can fill the disk with files no model uses. The size limit is the store's `max_size`.
  Rejected calls (status "rejecting" or "rejected") add `rejectReason` (the on-chain reason code)
  and `error` (why); dropped calls add `note` (how they ended without this relayer), and so do
  calls waiting for a model file the relayer is fetching (status "waiting").
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import hdrs, web

from ..errors import (ArtifactNotFoundError, ArtifactTooLargeError, DigestMismatchError, FastCallError,
                      InvalidContentIdError)
from ..refusals import refuse
from ..store import ModelStore, cid_to_digest, digest_to_cid, file_digest
from .fast.calls import FastCalls
from .metrics import RelayerMetrics
from .registered_files import RegisteredFiles
from .state import CallState, RelayerState, StoredCall

log = logging.getLogger(__name__)

StatusFn = Callable[[], dict[str, Any]]

MAX_UINT256 = 2**256 - 1
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STATUS_TIMEOUT_S = 5.0  # /healthz answers 503 when status() takes longer
SHUTDOWN_TIMEOUT_S = 10.0  # how long stop() lets requests in flight finish
READ_CHUNK = 256 * 1024
SETTLING_WAIT_S = 3.0  # how long a GET of a call whose settlement is in flight waits for it
IMMUTABLE = "public, max-age=31536000, immutable"  # a CID always names the same bytes
UPLOAD_HINT = (
    "send the file's raw bytes as the body, e.g. curl --data-binary @model.onnx "
    "-H 'Content-Type: application/octet-stream' <relayer>/v1/artifacts"
)
ROUTES_HINT = (
    "GET /healthz, GET /metrics, POST /v1/artifacts, GET /v1/artifacts/{cid}, "
    "GET /v1/requests/{requestId}, GET /v1/requests/{requestId}/output, POST /v1/models/{modelId}/infer, "
    "GET /v1/channels/{caller}/{modelId}"
)
_REQUEST_ID = re.compile(r"(?:[0-9]{1,78}|0[xX][0-9a-fA-F]{1,64})")


class ApiError(Exception):
    """An answer other than success: HTTP `status` and a message for the client."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.body: dict[str, Any] = {}  # extra fields of the JSON error


# ---------------------------------------------------------------------------- the app


def create_app(
    store: ModelStore,
    state: RelayerState,
    metrics: RelayerMetrics,
    status: StatusFn,
    *,
    status_timeout: float = STATUS_TIMEOUT_S,
    fast: FastCalls | None = None,
    files: RegisteredFiles | None = None,
    settling: Callable[[int], bool] | None = None,
) -> web.Application:
    """The relayer's HTTP application.

    `status()` feeds /healthz (chain id, relayer address, chain head, pending calls...). It runs
    in a thread of its own with `status_timeout` seconds to answer, so it may block, but it
    should read cached values rather than ask the chain. Its key "status" is ignored.
    With `fast`, the app also serves fast calls (POST /v1/models/{modelId}/infer) and channels.
    With `files` (default: the fast path's), uploads must be registered model versions; without
    either, any file is stored (an app without a chain, as in the HTTP tests).
    """
    if files is None and fast is not None:
        files = fast.files
    api = _Api(store, state, status, metrics, status_timeout, files, settling)
    app = web.Application(middlewares=[_json_errors], client_max_size=store.max_size)
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/metrics", api.metrics_text)
    app.router.add_post("/v1/artifacts", api.post_artifact, expect_handler=api.expect_artifact)
    app.router.add_get("/v1/artifacts/{cid}", api.get_artifact)
    app.router.add_get("/v1/requests/{requestId}", api.get_request)
    app.router.add_get("/v1/requests/{requestId}/output", api.get_output)
    if fast is not None:
        fast_api = _FastApi(fast)
        app.router.add_post("/v1/models/{modelId}/infer", fast_api.infer)
        app.router.add_get("/v1/channels/{caller}/{modelId}", fast_api.channel)
    app.on_cleanup.append(api.close)
    return app


class _Api:
    def __init__(
        self, store: ModelStore, state: RelayerState, status: StatusFn, metrics: RelayerMetrics, status_timeout: float,
        files: RegisteredFiles | None = None, settling: Callable[[int], bool] | None = None,
    ) -> None:
        self.store = store
        self.files = files
        self.settling = settling or (lambda _request_id: False)
        self.state = state
        self.status = status
        self.metrics = metrics
        self.status_timeout = status_timeout
        # One thread for status(): if it hangs, health checks queue and time out, and nothing
        # else (uploads, downloads) waits for a free worker.
        self._status_pool = ThreadPoolExecutor(1, thread_name_prefix="relayer-http-status")

    async def close(self, _app: web.Application) -> None:
        # Runs on the server's thread: close the SQLite connection this thread opened, and the
        # one status() may have opened in the pool's thread.
        self.state.close()
        self._status_pool.submit(self.state.close)
        self._status_pool.shutdown(wait=False, cancel_futures=False)

    # ------------------------------------------------------------------ health and metrics

    async def healthz(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        try:
            info = await asyncio.wait_for(loop.run_in_executor(self._status_pool, self.status), self.status_timeout)
            body = {"status": "ok", **{key: value for key, value in dict(info).items() if key != "status"}}
            text = json.dumps(body)
        except Exception as error:  # whatever status() raises, the answer is "unavailable"
            reason = _describe_status_failure(error, self.status_timeout)
            log.warning("GET /healthz: unavailable: %s", reason)
            return web.json_response({"status": "unavailable", "error": reason}, status=503)
        return web.Response(text=text, content_type="application/json")

    async def metrics_text(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.exposition(), headers={hdrs.CONTENT_TYPE: METRICS_CONTENT_TYPE})

    # ------------------------------------------------------------------ model files

    async def expect_artifact(self, request: web.Request) -> web.StreamResponse | None:
        """Answers `Expect: 100-continue`: refuses an oversized file before it is sent."""
        try:
            self._check_upload_headers(request)
        except ApiError as error:
            _log_error(request, error.status, error.message)
            return _error_response(error.status, error.message)
        await _continue(request)
        return None

    async def post_artifact(self, request: web.Request) -> web.Response:
        self._check_upload_headers(request)
        data = await self._read_body(request)
        if not data:
            raise ApiError(400, f"the request body is empty: {UPLOAD_HINT}")
        loop = asyncio.get_running_loop()
        if self.files is not None:
            await self._check_registered(loop, data)
        try:
            artifact = await loop.run_in_executor(None, self.store.put, data)
        except ArtifactTooLargeError as error:  # only if the limit changed since the check
            raise ApiError(413, str(error)) from None
        except OSError as error:
            raise ApiError(500, f"the relayer could not save the file ({error.strerror}); try again later") from None
        return web.json_response(
            {"cid": artifact.cid, "digest": artifact.digest_hex, "size": artifact.size},
            headers={hdrs.LOCATION: f"/v1/artifacts/{artifact.cid}"},
        )

    async def _check_registered(self, loop: asyncio.AbstractEventLoop, data: bytes) -> None:
        """Refuses a file no model version registered; a registration the follower has not read
        yet (the uploader just sent it) is looked for once."""
        digest = await loop.run_in_executor(None, file_digest, data)
        if self.files.knows(digest):
            return
        asked_at = time.monotonic()
        try:
            await loop.run_in_executor(None, self.files.catch_up_soon, asked_at)
        except Exception as error:  # noqa: BLE001 -- the chain is down: the file cannot be checked
            raise ApiError(503, f"the relayer cannot read the model registry now ({str(error)[:200]}); "
                           "try again later") from None
        if not self.files.knows(digest):
            self.metrics.uploads_refused.labels(reason="not_registered").inc()
            raise _refused(refuse(
                "not_registered", f"no model version on this deployment has the digest 0x{digest.hex()} "
                f"({digest_to_cid(digest)}), as its file or as its card (ipfs://CID); this relayer stores only "
                "registered model files and cards: register the model (registerModel) or publish the version "
                "(publishVersion) first, then upload",
                digest="0x" + digest.hex()))

    def _check_upload_headers(self, request: web.Request) -> None:
        if request.content_type.startswith("multipart/"):
            raise ApiError(415, f"a multipart form would be stored as the file itself; {UPLOAD_HINT}")
        size = request.content_length
        if size is not None and size > self.store.max_size:
            raise self._too_large(f"the file is {size} bytes")

    async def _read_body(self, request: web.Request) -> bytes:
        """The body, refused as soon as it passes the store's limit (a huge upload is never held whole)."""
        chunks: list[bytes] = []
        received = 0
        async for chunk in request.content.iter_chunked(READ_CHUNK):
            received += len(chunk)
            if received > self.store.max_size:
                raise self._too_large(f"the file is more than {self.store.max_size} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, what: str) -> ApiError:
        return ApiError(
            413,
            f"{what}, but this relayer stores files of at most {self.store.max_size} bytes; "
            "shrink the model or upload it to a relayer with a larger limit",
        )

    async def get_artifact(self, request: web.Request) -> web.Response:
        cid = request.match_info["cid"]
        loop = asyncio.get_running_loop()
        try:
            data = await loop.run_in_executor(None, self.store.get, cid)
        except InvalidContentIdError as error:
            raise ApiError(400, str(error)) from None
        except ArtifactNotFoundError:
            raise ApiError(404, f"this relayer does not hold the model file {cid}; upload it with POST /v1/artifacts") from None
        except DigestMismatchError as error:
            # The store refused to hand out bytes that no longer match their name.
            raise ApiError(500, f"this relayer's copy of {cid} is damaged ({error})") from None
        canonical = digest_to_cid(cid_to_digest(cid))
        return web.Response(
            body=data,
            content_type="application/octet-stream",
            headers={hdrs.ETAG: f'"{canonical}"', hdrs.CACHE_CONTROL: IMMUTABLE},
        )

    # ------------------------------------------------------------------ calls

    async def get_request(self, request: web.Request) -> web.Response:
        call = await self._settled_call(request)
        return web.json_response(call_json(call), status=202 if call.state is CallState.ANSWERED else 200)

    async def get_output(self, request: web.Request) -> web.Response:
        call = await self._settled_call(request)
        if call.state is CallState.ANSWERED:
            raise ApiError(
                409, f"request {call.request_id} is answered and its settlement is on the way; the output is "
                "published once it has settled on chain: poll GET /v1/requests/{requestId} until its status is "
                "\"settled\"",
            )
        if call.output is None or call.state is not CallState.SETTLED:
            raise ApiError(
                404, f"request {call.request_id} has no output (status {call.state.value}); "
                "poll GET /v1/requests/{requestId} until it is answered",
            )
        return web.Response(body=call.output, content_type="application/json")

    async def _settled_call(self, request: web.Request) -> StoredCall:
        """The call; if its settlement is in flight, once that has ended (at most
        SETTLING_WAIT_S): a caller who saw it settle on chain gets the output, not "settling"."""
        call = self._find_call(request)
        give_up = time.monotonic() + SETTLING_WAIT_S
        while call.state is CallState.ANSWERED and self.settling(call.request_id) and time.monotonic() < give_up:
            await asyncio.sleep(0.05)
            call = self._find_call(request)
        return call

    def _find_call(self, request: web.Request) -> StoredCall:
        # SQLite reads on the loop thread: an indexed lookup, and RelayerState keeps one
        # connection per thread, so this thread has its own.
        request_id = parse_request_id(request.match_info["requestId"])
        call = self.state.get(request_id)
        if call is None:
            scanned = self.state.next_block
            where = f"it has scanned up to block {scanned - 1}" if scanned else "it has not scanned any block yet"
            raise ApiError(
                404,
                f"this relayer has not seen request {request_id} (yet): {where}. If the request is "
                "newer, try again in a few seconds; otherwise check the relayer follows the "
                "deployment the request was sent to",
            )
        return call


class _FastApi:
    """The fast-call routes; the logic lives in FastCalls (relayer/fast/calls.py)."""

    def __init__(self, fast: FastCalls) -> None:
        self.fast = fast

    async def infer(self, request: web.Request) -> web.Response:
        model_id = _path_model_id(request.match_info["modelId"])
        if request.content_length is not None and request.content_length > self.fast.max_body:
            raise _refused(self.fast.too_large(request.content_length))
        started = time.perf_counter()
        body = await request.read()
        try:
            answer = await self.fast.infer(model_id, body)
        except FastCallError as error:
            raise _refused(error) from None
        # The relayer's own time for the call (body read, checks, model, durable commit, signing),
        # so clients and benchmarks can tell it from network and client time.
        elapsed_ms = (time.perf_counter() - started) * 1e3
        return web.Response(body=answer, content_type="application/json",
                            headers={"Server-Timing": f"relayer;dur={elapsed_ms:.3f}"})

    async def channel(self, request: web.Request) -> web.Response:
        try:
            view = await self.fast.channel_view(request.match_info["caller"], request.match_info["modelId"])
        except FastCallError as error:
            raise _refused(error) from None
        return web.json_response(view)


def _path_model_id(text: str) -> int:
    if text.isascii() and text.isdigit() and len(text) <= 78:
        return int(text)
    raise _refused(refuse("bad_request", f"{text[:100]!r} is not a model id: use its decimal number"))


def _refused(error: FastCallError) -> ApiError:
    """A refusal of the table (modelhub.refusals) as the API's answer: its status, message, code and fields."""
    api_error = ApiError(error.status, error.message)
    api_error.body = {"code": error.code, **error.details}
    return api_error


def parse_request_id(text: str) -> int:
    """A request id from a URL: decimal or 0x-hex, within uint256; ApiError 400 otherwise."""
    if _REQUEST_ID.fullmatch(text):
        value = int(text, 16) if text[:2] in ("0x", "0X") else int(text)
        if value <= MAX_UINT256:
            return value
    raise ApiError(
        400, f"{text[:100]!r} is not a request id: give the uint256 from InferenceRequested, in decimal or 0x-hex"
    )


def call_json(call: StoredCall) -> dict[str, Any]:
    """The public view of a call (see the module docstring for the fields)."""
    body: dict[str, Any] = {
        "requestId": str(call.request_id),
        "status": call.state.value,
        "output": None,
        "outputHash": None,
        "attestation": None,
        "signature": None,
    }
    if call.state is CallState.ANSWERED:
        body["settling"] = True
        body["note"] = ("answered; the output is published once this relayer's attestation has settled on chain "
                        "(the call is paid): poll again")
    elif call.state is CallState.SETTLED and call.output is not None and call.output_hash is not None:
        attestation = call.attestation().as_json()
        body.update(
            output=json.loads(call.output),
            outputHash="0x" + call.output_hash.hex(),
            attestation=attestation,
            signature="0x" + call.signature.hex() if call.signature is not None else None,
        )
    if call.state in (CallState.REJECTING, CallState.REJECTED):
        body["rejectReason"] = call.reject_reason
        body["error"] = call.note
    elif call.note is not None:
        body["note"] = call.note
    return body


# ---------------------------------------------------------------------------- errors


@web.middleware
async def _json_errors(request: web.Request, handler: Callable) -> web.StreamResponse:
    """Turns every failure into JSON {"error": ...} and one log line; never a traceback."""
    try:
        return await handler(request)
    except ApiError as error:
        _log_error(request, error.status, error.message)
        return _error_response(error.status, error.message, error.headers, error.body)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        message, headers = _describe_http_exception(request, error)
        _log_error(request, error.status, message)
        return _error_response(error.status, message, headers)
    except Exception as error:
        log.error("%s %s -> 500: %s: %s", request.method, request.path, type(error).__name__, error)
        log.debug("traceback of the error above", exc_info=True)
        return _error_response(500, "the relayer failed to answer (internal error, see its log); try again later")


def _describe_http_exception(request: web.Request, error: web.HTTPException) -> tuple[str, dict[str, str]]:
    if isinstance(error, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(error.allowed_methods))
        return f"{request.method} is not allowed on {request.path}; use {allowed}", {hdrs.ALLOW: allowed}
    if isinstance(error, web.HTTPNotFound):
        return f"there is no {request.path}; this relayer serves {ROUTES_HINT}", {}
    if isinstance(error, web.HTTPRequestEntityTooLarge):
        return f"the request body is too large ({error.text})", {}
    return f"{error.reason}: {error.text}", {}


def _describe_status_failure(error: Exception, timeout: float) -> str:
    if isinstance(error, asyncio.TimeoutError):
        return f"the relayer's status did not answer within {timeout:g} s; it may be stuck, check its log"
    return (str(error) or type(error).__name__)[:500]


def _error_response(status: int, message: str, headers: dict[str, str] | None = None,
                    extra: dict[str, Any] | None = None) -> web.Response:
    return web.json_response({"error": message, **(extra or {})}, status=status, headers=headers)


def _log_error(request: web.Request, status: int, message: str) -> None:
    level = logging.WARNING if status >= 500 else logging.INFO
    log.log(level, "%s %s -> %d: %s", request.method, request.path, status, message)


async def _continue(request: web.Request) -> None:
    """What aiohttp's default expect handler does: say "100 Continue" to an HTTP/1.1 client."""
    if request.version >= (1, 1) and request.headers.get(hdrs.EXPECT, "").lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0
    else:
        raise web.HTTPExpectationFailed(text=f"unknown Expect: {request.headers.get(hdrs.EXPECT)}")


# ---------------------------------------------------------------------------- the server


class HttpServer:
    """An aiohttp app (`create_app(...)`) on its own asyncio loop in a daemon thread.

    `start()` returns once the socket listens (port 0 picks a free port; `.port` says which);
    `stop()` stops accepting, lets requests in flight finish (up to `shutdown_timeout` seconds)
    and joins the thread. Usable as a context manager.
    """

    def __init__(
        self,
        app: web.Application,
        host: str = "127.0.0.1",
        port: int = 8700,
        *,
        shutdown_timeout: float = SHUTDOWN_TIMEOUT_S,
    ) -> None:
        self.app = app
        self.host = host
        self._requested_port = port
        self._shutdown_timeout = shutdown_timeout
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the HTTP server is not listening; call start() first")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Starts listening; raises OSError if the address cannot be bound."""
        if self._thread is not None:
            raise RuntimeError("the HTTP server was already started")
        self._thread = threading.Thread(target=self._run, name="relayer-http", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the HTTP server did not start listening within {timeout:g} s")
        if self._startup_error is not None:
            self._thread.join()
            error = self._startup_error
            if isinstance(error, OSError):
                raise OSError(
                    error.errno,
                    f"the relayer's HTTP API cannot listen on {self.host}:{self._requested_port} "
                    f"({error.strerror}); choose another --port or stop what uses this one",
                ) from None
            raise error
        log.info("relayer HTTP API listening on %s", self.url)

    def stop(self, timeout: float | None = None) -> None:
        """Graceful stop; does nothing if not running. Safe to call twice."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None or stopping is None or not thread.is_alive():
            return
        try:
            loop.call_soon_threadsafe(stopping.set)
        except RuntimeError:  # the loop closed meanwhile
            pass
        thread.join(timeout if timeout is not None else self._shutdown_timeout + 5)

    def __enter__(self) -> "HttpServer":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            self._ready.set()  # in case _serve failed before it could

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        runner = web.AppRunner(self.app, shutdown_timeout=self._shutdown_timeout)
        try:
            await runner.setup()
            await web.TCPSite(runner, self.host, self._requested_port).start()
            self._port = runner.addresses[0][1]
        except BaseException as error:
            self._startup_error = error
            await runner.cleanup()
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            await runner.cleanup()
            log.info("relayer HTTP API on %s stopped", self.url)
