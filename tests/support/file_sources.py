"""A tiny real HTTP server that plays a content-addressed file source (an IPFS gateway's
/ipfs/{cid}, or a relayer's /v1/artifacts/{cid}), honest or not: it serves whatever bytes it is
given for any path, or hangs, trickles, or streams without end, as a test sets `behaviour`."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BEHAVIOURS = ("serve", "hang", "trickle", "endless", "missing")


class FileSource:
    """`FileSource(body).start()`; `.url` the base URL (append `/ipfs/{cid}`); `.asked` the paths
    requested. `behaviour`: serve (`body`, with its length), hang (never answer), trickle (a
    byte at a time), endless (chunked bytes without end and without a length), missing (404)."""

    def __init__(self, body: bytes = b"", behaviour: str = "serve") -> None:
        assert behaviour in BEHAVIOURS, behaviour
        self.body, self.behaviour = body, behaviour
        self.asked: list[str] = []
        self._stop = threading.Event()
        source = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 -- the http.server interface
                source.asked.append(self.path)
                getattr(source, "_" + source.behaviour)(self)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "FileSource":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "FileSource":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # behaviours, each answering one request

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(self.body)))
        handler.end_headers()
        handler.wfile.write(self.body)

    def _missing(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(404)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def _hang(self, handler: BaseHTTPRequestHandler) -> None:
        self._stop.wait(120)

    def _trickle(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(10**6))
        handler.end_headers()
        while not self._stop.is_set():
            try:
                handler.wfile.write(b"x")
                handler.wfile.flush()
            except OSError:
                return
            time.sleep(0.1)

    def _endless(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b"y" * 65536
        while not self._stop.is_set():
            try:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                return
