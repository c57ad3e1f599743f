"""The client of a relayer's HTTP API (relayer/http.py serves it): health, model file uploads,
call outputs, fast calls and channel views; and finding a relayer that serves a deployment.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import requests
from eth_utils import is_address, to_checksum_address

from . import errors as e
from .results import ChannelState, RelayerChannel
from .store import digest_to_cid, file_digest
from .typed_data import Receipt

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["HTTP_TIMEOUT_S", "RelayerClient", "post_artifact", "relayer_at", "resolve_relayer"]

HTTP_TIMEOUT_S = 30.0
UPLOAD_TIMEOUT_S = 120.0
REACHABLE_TIMEOUT_S = 10.0
_CHECK_IT_RUNS = "check that it runs and that the URL is right"


class RelayerClient:
    """The HTTP API of the relayer at `url`. With `http` (a requests.Session) every request
    shares its kept-alive connection; without, each request opens its own."""

    def __init__(self, url: str, http: requests.Session | None = None, timeout: float = HTTP_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.http: Any = http if http is not None else requests
        self.timeout = timeout

    # ------------------------------------------------------------------ reads

    def health(self) -> dict:
        """GET /healthz: the relayer's status (its address, chain id, chain head...)."""
        reply, health = self._get_json("/healthz")
        if reply.status_code != 200 or not isinstance(health, dict):
            raise e.RelayerUnreachableError(
                f"the relayer at {self.url} is not healthy (/healthz answered {reply.status_code}: "
                f"{reply.text[:120]!r}); try again later or use another relayer", status=reply.status_code)
        return health

    def channel(self, caller: str, model_id: int) -> RelayerChannel:
        """GET /v1/channels/{caller}/{modelId}: the relayer's view of the channel (caller, this
        relayer, model). Not checked against anything: FastSession does that."""
        reply, view = self._get_json(f"/v1/channels/{to_checksum_address(caller)}/{int(model_id)}")
        if reply.status_code != 200 or not isinstance(view, dict):
            hint = ("it does not serve fast calls (no /v1/channels route); update it or use another "
                    "relayer" if reply.status_code in (404, 405) else f"{reply.text[:120]!r}")
            raise e.RelayerUnreachableError(
                f"the relayer at {self.url} answered {reply.status_code} for the channel of model "
                f"{model_id}: {hint}", status=reply.status_code)
        try:
            return RelayerChannel(to_checksum_address(view["caller"]), to_checksum_address(view["relayer"]),
                                  int(view["modelId"]), ChannelState.from_json(view), int(view.get("price", 0)),
                                  int(view.get("receiptPrice", 0)), int(view.get("deadline", 0)),
                                  bytes.fromhex(str(view.get("signature") or "").removeprefix("0x")))
        except (KeyError, TypeError, ValueError) as error:
            raise e.RelayerUnreachableError(f"the relayer at {self.url} answered a malformed channel "
                                            f"view ({error!r}); use another relayer") from None

    def request_output(self, request_id: int) -> dict:
        """GET /v1/requests/{requestId}: the output of an on-chain call with its attestation,
        as a JSON object (checked by answers.SignedAnswer, not here)."""
        what = f" for the output of request {request_id}"
        reply, answer = self._get_json(f"/v1/requests/{request_id}", what, "pass its address with --relayer")
        if reply.status_code != 200:
            raise e.ModelHubError(f"the relayer at {self.url} answered {reply.status_code}{what}: "
                                  f"{reply.text[:200]}")
        if not isinstance(answer, dict):
            raise e.OutputVerificationError(
                f"the relayer at {self.url} answered for request {request_id} with something "
                "that is not a JSON object")
        return answer

    def _get_json(self, path: str, what: str = "", advice: str = _CHECK_IT_RUNS) -> tuple[Any, Any]:
        """(reply, its JSON or None) of GET `path`; RelayerUnreachableError if nothing answers."""
        try:
            reply = self.http.get(self.url + path, timeout=self.timeout)
        except requests.RequestException as error:
            raise e.RelayerUnreachableError(f"cannot reach the relayer at {self.url}{what} ({error}); "
                                            f"{advice}") from None
        try:
            return reply, reply.json()
        except ValueError:
            return reply, None

    # ------------------------------------------------------------------ fast calls

    def fast_call(self, model_id: int, canonical_input: bytes, version: int, receipt: Receipt,
                  signature: bytes) -> tuple[int, dict]:
        """POST /v1/models/{modelId}/infer: one call on `canonical_input` (its canonical JSON
        bytes, sent as they are, so the relayer hashes exactly what the caller did) paid by
        `receipt`; (HTTP status, JSON answer). RelayerUnreachableError when no JSON object
        comes back: the relayer may or may not have kept the receipt."""
        body = b"".join((
            b'{"input":', canonical_input,
            b',"version":', str(version).encode(),
            b',"receipt":', json.dumps(receipt.as_json(), separators=(",", ":")).encode(),
            b',"signature":"0x', signature.hex().encode(), b'"}',
        ))
        try:
            reply = self.http.post(f"{self.url}/v1/models/{model_id}/infer", data=body, timeout=self.timeout,
                                   headers={"Content-Type": "application/json"})
        except requests.RequestException as error:
            raise e.RelayerUnreachableError(
                f"the fast call to the relayer at {self.url} failed ({error}); it may or may not have "
                "been served: the session re-reads the channel before the next call") from None
        try:
            answer = reply.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise e.RelayerUnreachableError(
                f"the relayer at {self.url} answered {reply.status_code} to a fast call with something "
                f"that is not a JSON object ({reply.text[:120]!r}); is the URL a Model Hub relayer that "
                "serves fast calls?", status=reply.status_code)
        return reply.status_code, answer

    # ------------------------------------------------------------------ model files

    def check_reachable(self) -> None:
        """ArtifactUploadError unless something answers HTTP at the relayer's URL (before an
        upload: finding out after registering the model would leave it without a file)."""
        try:
            self.http.get(self.url + "/healthz", timeout=min(self.timeout, REACHABLE_TIMEOUT_S))
        except requests.RequestException as error:
            raise self._not_stored(error) from None

    def post_artifact(self, data: bytes) -> str:
        """POST /v1/artifacts: uploads a model file; returns its CID once the relayer's answer
        names the same digest."""
        digest = file_digest(data)
        try:
            reply = self.http.post(self.url + "/v1/artifacts", data=data, timeout=UPLOAD_TIMEOUT_S,
                                   headers={"Content-Type": "application/octet-stream"})
            reply.raise_for_status()
            answer = reply.json()
            got_digest, got_cid = str(answer["digest"]), str(answer["cid"])
        except (requests.RequestException, ValueError, KeyError, TypeError) as error:
            raise self._not_stored(error) from None
        if got_digest.lower() != "0x" + digest.hex() or got_cid != digest_to_cid(digest):
            raise e.ArtifactUploadError(
                f"the relayer at {self.url} stored the file as {got_cid} ({got_digest}), but the "
                f"file is {digest_to_cid(digest)} (0x{digest.hex()}); do not use that relayer"
            )
        return got_cid

    def _not_stored(self, error: Exception) -> e.ArtifactUploadError:
        return e.ArtifactUploadError(f"the relayer at {self.url} did not store the model file ({error}); "
                                     "check that it runs and that the URL is its HTTP address")

    def close(self) -> None:
        """Closes the kept-alive connection, if the client has one."""
        if isinstance(self.http, requests.Session):
            self.http.close()


def post_artifact(relayer_url: str, data: bytes) -> str:
    """Uploads a model file to the relayer at `relayer_url` (`RelayerClient.post_artifact`)."""
    return RelayerClient(relayer_url).post_artifact(data)


# --- finding a relayer -------------------------------------------------------------------------


def resolve_relayer(hub: "Hub", relayer: str | None, http: requests.Session | None = None,
                    timeout: float = HTTP_TIMEOUT_S) -> tuple[str, str]:
    """(address, URL) of the relayer to make fast calls at: `relayer` is its URL or its address
    (then its registered endpoint); None picks the first active relayer that answers. The
    relayer's /healthz must name the same address and this deployment's chain, and the relayer
    must be bonded and active (receipts to any other never settle)."""
    if relayer is None:
        return _first_answering_relayer(hub, http, timeout)
    text = str(relayer).strip()
    if "://" in text:
        url = text.rstrip("/")
        address = None
    elif is_address(text):
        address = to_checksum_address(text)
        url = hub.relayer_info(address).endpoint.rstrip("/")
        if not url:
            raise e.RelayerMismatchError(f"{address} is not a registered relayer: it has no "
                                         "endpoint; pass a relayer's URL or address")
    else:
        raise e.RelayerMismatchError(f"{text!r} is neither a relayer's URL (http://...) nor its "
                                     "address (0x...)")
    named = relayer_at(hub, url, http, timeout)
    if address is not None and named != address:
        raise e.RelayerMismatchError(f"the relayer at {url} (the endpoint {address} registered) "
                                     f"says it is {named}; the endpoint is stale: ask its operator")
    if not hub.relayer_info(named).active:
        raise e.RelayerMismatchError(
            f"the relayer at {url} ({named}) is not bonded and active: its receipts would never "
            "settle; use another relayer")
    return named, url


def relayer_at(hub: "Hub", url: str, http: requests.Session | None = None,
               timeout: float = HTTP_TIMEOUT_S) -> str:
    """The address the relayer at `url` names in its /healthz, checked to serve this
    deployment's chain (whether it is active is not checked)."""
    client = RelayerClient(url, http, timeout)
    health = client.health()
    named = health.get("relayer")
    if not isinstance(named, str) or not is_address(named):
        raise e.RelayerUnreachableError(f"the relayer at {client.url} does not name its address in "
                                        "/healthz; is it a Model Hub relayer?")
    if health.get("chainId") != hub.deployment.chain_id:
        raise e.RelayerMismatchError(
            f"the relayer at {client.url} serves chain {health.get('chainId')}, not chain "
            f"{hub.deployment.chain_id} of this deployment; use a relayer of this chain")
    return to_checksum_address(named)


def _first_answering_relayer(hub: "Hub", http: requests.Session | None, timeout: float) -> tuple[str, str]:
    registered = hub.registered_relayers()
    for address in registered:
        try:
            return resolve_relayer(hub, address, http, min(timeout, 5.0))
        except (e.RelayerMismatchError, e.RelayerUnreachableError):
            continue
    raise e.RelayerMismatchError(
        f"none of the {len(registered)} registered relayers is active and answering; pass a "
        "relayer's URL or address")
