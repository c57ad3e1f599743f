"""Lying relayers for tests: a stand-in in front of a real relayer process that rewrites its
answers and signs the rewritten outputs with the relayer's key, and the made-up outputs."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from eth_utils import keccak

from modelhub.codec import encode_output
from modelhub.typed_data import Attestation, sign

from tests.support.json_http import send_json


class RewritingRelayer:
    """Stands in front of a relayer process: forwards every request to it, but rewrites the
    output of fast calls answered while `lie` is set (a function of the output) and signs the
    attestation of the rewritten output with the relayer's key, as a lying relayer would.
    `answers` (request id -> JSON) answers GET /v1/requests/{id} for calls test code settled."""

    def __init__(self, upstream: str, relayer_key: str, chain_id: int, escrow: str) -> None:
        self.lie = None
        self.answers: dict[int, dict] = {}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                found = re.fullmatch(r"/v1/requests/(\d+)", self.path)
                if found and int(found.group(1)) in proxy.answers:
                    send_json(self, 200, proxy.answers[int(found.group(1))])
                    return
                self._forward(None)

            def do_POST(self) -> None:  # noqa: N802
                self._forward(self.rfile.read(int(self.headers.get("Content-Length", 0))))

            def _forward(self, body: bytes | None) -> None:
                reply = requests.request(self.command, upstream + self.path, data=body, timeout=30,
                                         headers={"Content-Type": self.headers.get("Content-Type", "application/json")})
                content = reply.content
                if proxy.lie is not None and reply.status_code == 200 and self.path.endswith("/infer"):
                    content = json.dumps(proxy.rewritten(reply.json())).encode()
                self.send_response(reply.status_code)
                self.send_header("Content-Type", reply.headers.get("Content-Type", "application/octet-stream"))
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args) -> None:
                pass

        self._key, self._chain_id, self._escrow = relayer_key, chain_id, escrow
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def signed(self, att: Attestation, output: dict, signature: bytes | None = None) -> dict:
        """The parts of an answer for `output`, attested by `att` with `signature` (default: the
        relayer's)."""
        signature = signature or sign(self._key, att, self._chain_id, self._escrow)
        return {"output": output, "outputHash": "0x" + att.output_hash.hex(), "attestation": att.as_json(),
                "signature": "0x" + signature.hex()}

    def rewritten(self, answer: dict) -> dict:
        output = self.lie(answer["output"])
        att = Attestation.from_json(answer["attestation"])
        att = Attestation(att.request_id, att.model_id, att.version, att.input_hash, keccak(encode_output(output)))
        return {**answer, **self.signed(att, output)}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def another_label(output: dict) -> dict:
    """The iris output with a class it did not give: what a relayer that skips the model says."""
    return {**output, "label": [(label + 1) % 3 for label in output["label"]]}


def nudged(output: dict) -> dict:
    """The output with every probability off in its 7th digit: another CPU's honest answer."""
    return {**output, "probabilities": [{k: v * (1 + 3e-7) for k, v in row.items()} for row in output["probabilities"]]}
