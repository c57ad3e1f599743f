"""Tests of the relayer's HTTP API: a real server on 127.0.0.1, a real HTTP client, a real model
store and a real SQLite state file. No blockchain."""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from eth_account import Account
from prometheus_client.parser import text_string_to_metric_families

from modelhub.codec import encode_output, input_hash, output_hash
from modelhub.errors import RejectReason
from modelhub.relayer.http import HttpServer, create_app
from modelhub.relayer.state import CallState, RelayerState, SeenCall
from modelhub.store import ModelStore, digest_to_cid
from modelhub.typed_data import Attestation, recover_signer
from modelhub.typed_data import sign as sign_attestation

CHAIN_ID = 31337
ESCROW = "0x" + "e5" * 20
SIGNER = Account.from_key("0x" + "11" * 32)
BIG_ID = 2**254 + 12345  # request ids are this large: beyond 2**53, where JS numbers round
INPUT = b'{"X":[[5.1,3.5,1.4,0.2]]}'
OUTPUT = encode_output({"label": [1], "probabilities": [{"0": 0.1, "1": 0.8, "2": 0.1}]})
MODEL = b"model file bytes; the relayer stores any bytes"
TIMEOUT = 10
HTTP_STORE_LIMIT = 4096  # the relayer_store fixture's max_size


def url(server: HttpServer, path: str) -> str:
    return server.url + path


def get(server: HttpServer, path: str, **kwargs) -> requests.Response:
    return requests.get(url(server, path), timeout=TIMEOUT, **kwargs)


def upload(server: HttpServer, data, **kwargs) -> requests.Response:
    headers = {"Content-Type": "application/octet-stream", **kwargs.pop("headers", {})}
    return requests.post(url(server, "/v1/artifacts"), data=data, headers=headers, timeout=TIMEOUT, **kwargs)


def assert_json_error(reply: requests.Response, status: int, *phrases: str) -> str:
    assert reply.status_code == status, reply.text
    assert reply.headers["Content-Type"].startswith("application/json")
    body = reply.json()
    assert set(body) == {"error"}
    assert "Traceback" not in body["error"]
    for phrase in phrases:
        assert phrase in body["error"]
    return body["error"]


def see(state: RelayerState, request_id: int, block: int = 100) -> SeenCall:
    call = SeenCall(
        request_id=request_id, model_id=3, version=2, caller="0x" + "ca" * 20, price=10**15, input=INPUT,
        input_hash=input_hash(INPUT), block_number=block, deadline=2_000_000_000,
    )
    state.record_seen([call], next_block=block + 1)
    return call


def answer(state: RelayerState, call: SeenCall) -> tuple[Attestation, bytes]:
    att = Attestation(call.request_id, call.model_id, call.version, call.input_hash, output_hash(OUTPUT))
    signature = sign_attestation(SIGNER.key, att, CHAIN_ID, ESCROW)
    state.mark_answered([(call.request_id, OUTPUT, att.output_hash, signature)])
    return att, signature


def http_log_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "modelhub.relayer.http"]


# ---------------------------------------------------------------- server lifecycle


def test_port_zero_listens_on_a_free_port_and_stop_closes_it(
    relayer_store, relayer_state, relayer_metrics, health_status
) -> None:
    server = HttpServer(create_app(relayer_store, relayer_state, relayer_metrics, health_status), host="127.0.0.1", port=0)
    server.start()
    try:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert get(server, "/healthz").status_code == 200
    finally:
        server.stop()
    server.stop()  # twice is harmless
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=TIMEOUT)


def test_a_port_in_use_fails_start_with_an_os_error_naming_it(
    http_server, relayer_store, relayer_state, relayer_metrics, health_status
) -> None:
    app = create_app(relayer_store, relayer_state, relayer_metrics, health_status)
    second = HttpServer(app, host="127.0.0.1", port=http_server.port)
    with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{http_server.port}"):
        second.start()
    assert get(http_server, "/healthz").status_code == 200


def test_stop_lets_a_request_in_flight_finish(
    relayer_store, relayer_state, relayer_metrics, health_status
) -> None:
    health_status.delay = 0.5
    server = HttpServer(create_app(relayer_store, relayer_state, relayer_metrics, health_status), host="127.0.0.1", port=0)
    server.start()
    with ThreadPoolExecutor(1) as pool:
        reply = pool.submit(get, server, "/healthz")
        time.sleep(0.2)  # the request is being handled
        server.stop()
        assert reply.result().status_code == 200


# ---------------------------------------------------------------- /healthz and /metrics


def test_healthz_reports_ok_with_the_daemon_status(http_server, relayer_state) -> None:
    see(relayer_state, 7)
    reply = get(http_server, "/healthz")
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "ok"
    assert body["chainId"] == CHAIN_ID
    assert body["nextBlock"] == 101
    assert body["calls"] == {state.value: int(state is CallState.NEW) for state in CallState}


def test_healthz_answers_503_when_the_status_fails(http_server, health_status, caplog) -> None:
    health_status.failure = RuntimeError("chain unreachable for 30 s")
    with caplog.at_level(logging.INFO, logger="modelhub.relayer.http"):
        reply = get(http_server, "/healthz")
    assert reply.status_code == 503
    assert reply.json() == {"status": "unavailable", "error": "chain unreachable for 30 s"}
    assert len(http_log_lines(caplog)) == 1


def test_healthz_answers_503_when_the_status_hangs(http_server, health_status) -> None:
    health_status.delay = 1.5  # the fixture's status timeout is 1 s
    reply = get(http_server, "/healthz")
    assert reply.status_code == 503
    assert "did not answer within 1 s" in reply.json()["error"]


def test_metrics_are_prometheus_text(http_server, relayer_metrics) -> None:
    relayer_metrics.requests_seen.inc(3)
    relayer_metrics.requests_rejected.labels(reason="1").inc()
    reply = get(http_server, "/metrics")
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }
    assert samples[("modelhub_requests_seen_total", ())] == 3
    assert samples[("modelhub_requests_rejected_total", (("reason", "1"),))] == 1


# ---------------------------------------------------------------- POST /v1/artifacts


def test_an_upload_answers_the_cid_digest_and_size_and_stores_the_bytes(http_server, relayer_store) -> None:
    reply = upload(http_server, MODEL)
    assert reply.status_code == 200
    digest = hashlib.sha256(MODEL).digest()
    assert reply.json() == {"cid": digest_to_cid(digest), "digest": "0x" + digest.hex(), "size": len(MODEL)}
    assert reply.headers["Location"] == f"/v1/artifacts/{digest_to_cid(digest)}"
    assert relayer_store.get(digest_to_cid(digest)) == MODEL


def test_the_same_bytes_always_get_the_same_answer(http_server) -> None:
    first, second = upload(http_server, MODEL), upload(http_server, MODEL)
    assert (first.status_code, first.json()) == (second.status_code, second.json()) == (200, first.json())


def test_a_file_at_the_size_limit_is_accepted(http_server, relayer_store) -> None:
    assert relayer_store.max_size == HTTP_STORE_LIMIT
    data = bytes(range(256)) * (HTTP_STORE_LIMIT // 256)
    assert len(data) == HTTP_STORE_LIMIT
    assert upload(http_server, data).json()["size"] == HTTP_STORE_LIMIT


def test_an_upload_over_the_limit_answers_413_and_stores_nothing(http_server, relayer_store) -> None:
    reply = upload(http_server, b"x" * (HTTP_STORE_LIMIT + 1))
    assert_json_error(reply, 413, f"at most {HTTP_STORE_LIMIT} bytes", f"{HTTP_STORE_LIMIT + 1} bytes")
    assert list(relayer_store.root.iterdir()) == []


def test_a_streamed_upload_is_cut_off_once_it_passes_the_limit(http_server, relayer_store) -> None:
    # No Content-Length (chunked transfer): the limit is enforced while reading.
    chunks = (b"y" * 1024 for _ in range(8))
    reply = upload(http_server, chunks)
    assert_json_error(reply, 413, f"more than {HTTP_STORE_LIMIT} bytes")
    assert list(relayer_store.root.iterdir()) == []


def test_an_oversized_upload_is_refused_before_its_body_with_expect_100_continue(http_server) -> None:
    with socket.create_connection(("127.0.0.1", http_server.port), timeout=TIMEOUT) as sock:
        sock.sendall(
            b"POST /v1/artifacts HTTP/1.1\r\nHost: relayer\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: 1000000000\r\nExpect: 100-continue\r\n\r\n"
        )
        head = sock.recv(65536).decode()
    assert head.startswith("HTTP/1.1 413")
    assert "100 Continue" not in head


def test_an_upload_with_expect_100_continue_within_the_limit_goes_through(http_server) -> None:
    with socket.create_connection(("127.0.0.1", http_server.port), timeout=TIMEOUT) as sock:
        sock.sendall(
            b"POST /v1/artifacts HTTP/1.1\r\nHost: relayer\r\nContent-Type: application/octet-stream\r\n"
            + f"Content-Length: {len(MODEL)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n".encode()
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(MODEL)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)["cid"] == digest_to_cid(hashlib.sha256(MODEL).digest())


def test_an_empty_upload_answers_400(http_server) -> None:
    assert_json_error(upload(http_server, b""), 400, "body is empty", "--data-binary")


def test_a_multipart_form_upload_answers_415(http_server, relayer_store) -> None:
    reply = requests.post(url(http_server, "/v1/artifacts"), files={"file": MODEL}, timeout=TIMEOUT)
    assert_json_error(reply, 415, "raw bytes")
    assert list(relayer_store.root.iterdir()) == []


# ---------------------------------------------------------------- GET /v1/artifacts/{cid}


def test_a_stored_file_is_served_byte_for_byte(http_server) -> None:
    cid = upload(http_server, MODEL).json()["cid"]
    reply = get(http_server, f"/v1/artifacts/{cid}")
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "application/octet-stream"
    assert reply.headers["ETag"] == f'"{cid}"'
    assert reply.content == MODEL


def test_an_unknown_cid_answers_404(http_server) -> None:
    cid = digest_to_cid(hashlib.sha256(b"never uploaded").digest())
    assert_json_error(get(http_server, f"/v1/artifacts/{cid}"), 404, cid, "POST /v1/artifacts")


@pytest.mark.parametrize("cid", ["not-a-cid", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "bafy" + "a" * 55])
def test_a_malformed_cid_answers_400(http_server, cid) -> None:
    assert_json_error(get(http_server, f"/v1/artifacts/{cid}"), 400)


def test_a_tampered_stored_file_is_not_served(http_server, relayer_store, caplog) -> None:
    cid = upload(http_server, MODEL).json()["cid"]
    relayer_store.path(cid).write_bytes(b"swapped " + MODEL)
    with caplog.at_level(logging.INFO, logger="modelhub.relayer.http"):
        reply = get(http_server, f"/v1/artifacts/{cid}")
    error = assert_json_error(reply, 500, cid, "damaged", "upload the original file again")
    assert MODEL.decode() not in error
    assert len(http_log_lines(caplog)) == 1


# ---------------------------------------------------------------- GET /v1/requests/{requestId}


def test_a_new_call_has_no_output_yet(http_server, relayer_state) -> None:
    see(relayer_state, BIG_ID)
    reply = get(http_server, f"/v1/requests/{BIG_ID}")
    assert reply.status_code == 200
    assert reply.json() == {
        "requestId": str(BIG_ID), "status": "new", "output": None, "outputHash": None, "attestation": None,
        "signature": None,
    }


def test_an_answered_call_does_not_show_its_output_before_it_has_settled(http_server, relayer_state) -> None:
    # Issue 10, attack 4: an output published before the call is paid could be read by anyone,
    # and the request then left unpaid. Until its settlement lands, the answer says "settling".
    answer(relayer_state, see(relayer_state, BIG_ID))
    reply = get(http_server, f"/v1/requests/{BIG_ID}")
    assert reply.status_code == 202
    body = reply.json()
    assert body["status"] == "answered" and body["settling"] is True
    assert body["output"] is body["outputHash"] is body["attestation"] is body["signature"] is None
    assert OUTPUT.decode() not in reply.text
    raw = get(http_server, f"/v1/requests/{BIG_ID}/output")
    assert raw.status_code == 409 and OUTPUT not in raw.content


def test_a_settled_call_shows_its_output_and_signed_attestation(http_server, relayer_state) -> None:
    att, signature = answer(relayer_state, see(relayer_state, BIG_ID))
    relayer_state.mark_ended([BIG_ID], CallState.SETTLED)
    body = get(http_server, f"/v1/requests/{BIG_ID}").json()
    assert body["requestId"] == str(BIG_ID)  # a string: JavaScript numbers would round it
    assert body["status"] == "settled"
    assert body["output"] == json.loads(OUTPUT)
    assert body["outputHash"] == "0x" + output_hash(OUTPUT).hex()
    assert body["attestation"] == {
        "requestId": str(BIG_ID), "modelId": 3, "version": 2, "inputHash": "0x" + input_hash(INPUT).hex(),
        "outputHash": body["outputHash"],
    }
    assert body["signature"] == "0x" + signature.hex()
    # Everything a client needs to check the answer, from the answer alone:
    served = Attestation.from_json(body["attestation"])
    assert served == att
    assert recover_signer(served, bytes.fromhex(body["signature"][2:]), CHAIN_ID, ESCROW) == SIGNER.address


def test_the_raw_output_route_gives_the_bytes_that_hash_to_output_hash(http_server, relayer_state) -> None:
    call = see(relayer_state, 5)
    assert_json_error(get(http_server, "/v1/requests/5/output"), 404, "status new")
    answer(relayer_state, call)
    relayer_state.mark_ended([5], CallState.SETTLED)
    reply = get(http_server, "/v1/requests/5/output")
    assert reply.status_code == 200
    assert reply.content == OUTPUT
    assert "0x" + output_hash(reply.content).hex() == get(http_server, "/v1/requests/5").json()["outputHash"]


def test_an_answered_call_dropped_without_payment_never_shows_its_output(http_server, relayer_state) -> None:
    answer(relayer_state, see(relayer_state, 9))
    relayer_state.mark_ended([9], CallState.DROPPED, note="deadline passed before settlement")
    body = get(http_server, "/v1/requests/9").json()
    assert body["status"] == "dropped"
    assert body["output"] is None
    assert get(http_server, "/v1/requests/9/output").status_code == 404


@pytest.mark.parametrize("ended", [False, True])
def test_a_rejected_call_says_why(http_server, relayer_state, ended) -> None:
    see(relayer_state, 11)
    relayer_state.mark_rejecting(11, RejectReason.INPUT_MISMATCH, "input X has shape [1, 3], the model wants [N, 4]")
    if ended:
        relayer_state.mark_ended([11], CallState.REJECTED)
    body = get(http_server, "/v1/requests/11").json()
    assert body["status"] == ("rejected" if ended else "rejecting")
    assert body["rejectReason"] == 1
    assert body["error"] == "input X has shape [1, 3], the model wants [N, 4]"
    assert body["output"] is body["outputHash"] is body["attestation"] is body["signature"] is None


def test_a_dropped_call_carries_its_note(http_server, relayer_state) -> None:
    see(relayer_state, 12)
    relayer_state.mark_ended([12], CallState.DROPPED, note="refunded to the caller")
    body = get(http_server, "/v1/requests/12").json()
    assert body["status"] == "dropped"
    assert body["note"] == "refunded to the caller"
    assert "error" not in body


def test_a_request_id_may_be_given_in_hex(http_server, relayer_state) -> None:
    see(relayer_state, BIG_ID)
    assert get(http_server, f"/v1/requests/{hex(BIG_ID)}").json()["requestId"] == str(BIG_ID)
    assert get(http_server, f"/v1/requests/{hex(BIG_ID).upper().replace('0X', '0x')}").status_code == 200


def test_an_unseen_request_answers_404_saying_the_relayer_has_not_seen_it(http_server, relayer_state) -> None:
    see(relayer_state, 1, block=41)
    assert_json_error(get(http_server, "/v1/requests/2"), 404, "has not seen request 2 (yet)", "block 41")


@pytest.mark.parametrize("text", ["abc", "-1", "1.5", "+7", " 7", "0x", "0xzz", str(2**256), "1" * 200])
def test_a_malformed_request_id_answers_400(http_server, text) -> None:
    assert_json_error(get(http_server, f"/v1/requests/{requests.utils.quote(text)}"), 400, "not a request id")


# ---------------------------------------------------------------- errors in general


def test_an_unknown_route_answers_404_in_json_listing_the_routes(http_server) -> None:
    assert_json_error(get(http_server, "/v1/models"), 404, "GET /v1/requests/{requestId}")


def test_a_wrong_method_answers_405_in_json(http_server) -> None:
    reply = requests.delete(url(http_server, "/v1/artifacts"), timeout=TIMEOUT)
    assert_json_error(reply, 405, "use POST")
    assert reply.headers["Allow"] == "POST"


def test_an_internal_failure_answers_500_without_a_traceback_and_logs_one_line(
    http_server, relayer_state, monkeypatch, caplog
) -> None:
    def broken(request_id: int):
        raise RuntimeError("database disk image is malformed")

    monkeypatch.setattr(relayer_state, "get", broken)
    with caplog.at_level(logging.INFO, logger="modelhub.relayer.http"):
        reply = get(http_server, "/v1/requests/1")
    error = assert_json_error(reply, 500, "internal error")
    assert "malformed" not in error
    lines = http_log_lines(caplog)
    assert len(lines) == 1 and "RuntimeError: database disk image is malformed" in lines[0]


def test_each_client_error_logs_one_line(http_server, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="modelhub.relayer.http"):
        get(http_server, "/v1/requests/nope")
        upload(http_server, b"")
    lines = http_log_lines(caplog)
    assert len(lines) == 2
    assert "GET /v1/requests/nope -> 400" in lines[0]
    assert "POST /v1/artifacts -> 400" in lines[1]


# ---------------------------------------------------------------- uploads only of registered files


class _Registered:
    """Stands for RegisteredFiles: knows the digests given; counts the catch-ups asked for."""

    def __init__(self, *files: bytes) -> None:
        self.digests = {hashlib.sha256(data).digest() for data in files}
        self.catch_ups = 0

    def knows(self, digest: bytes) -> bool:
        return digest in self.digests

    def catch_up_soon(self, asked_at: float) -> None:
        self.catch_ups += 1


def test_only_files_of_registered_model_versions_are_stored(tmp_path, relayer_state, relayer_metrics) -> None:
    store = ModelStore(tmp_path / "registered", max_size=HTTP_STORE_LIMIT)
    files = _Registered(MODEL)
    app = create_app(store, relayer_state, relayer_metrics, lambda: {}, files=files)
    with HttpServer(app, host="127.0.0.1", port=0, shutdown_timeout=2.0) as server:
        stranger = b"a file no model version registered"
        reply = upload(server, stranger)
        assert reply.status_code == 403, reply.text
        body = reply.json()
        assert body["code"] == "not_registered" and "register" in body["error"]
        assert body["digest"] == "0x" + hashlib.sha256(stranger).hexdigest()
        assert files.catch_ups == 1  # it looked once for a registration it had not read yet
        assert not store.has(digest_to_cid(hashlib.sha256(stranger).digest()))
        assert upload(server, MODEL).status_code == 200
        assert store.has(digest_to_cid(hashlib.sha256(MODEL).digest()))
        assert upload(server, b"x" * (HTTP_STORE_LIMIT + 1)).status_code == 413  # the size limit still holds
