"""The fast path's calls, POST /v1/models/{modelId}/infer and GET /v1/channels/{caller}/{modelId}
(docs/fast-calls.md), answered from memory: checks, model run, durable receipt, attestation.

A receipt's signature is recovered locally and compared with the caller and the caller's
receipt signer key in force, before anything else is looked at; contract wallets sign with a
registered receipt signer key (no ERC-1271 call: its answer could differ between this check and
settlement). A caller the chain view does not know is refused at once (`no_reservation`),
without a chain read. In memory: one lock and one in-flight amount per call being served, at
most `max_in_flight` calls.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from ... import codec
from ...errors import (
    ArtifactNotFoundError,
    DigestMismatchError,
    FastCallError,
    InferenceTimeoutError,
    InvalidInputError,
    ModelExecutionError,
    ModelFileError,
    OutputEncodingError,
)
from ...refusals import refuse
from ...rpc import JsonRpc
from ...runtime import ModelRuntime
from ...store import digest_to_cid
from ...typed_data import MIN_RECEIPT_PRICE, keccak, recover_digest_address
from ..metrics import RelayerMetrics
from ..registered_files import RegisteredFiles
from ..settings import RelayerConfig
from ..signing import AttestationSigner
from .body import MAX_UINT256, BodyReader, ReceiptCall, address, uint
from .book import CallerView
from .chain_view import ChainView, ModelView
from .channels import Channel, ChannelStore

BODY_OVERHEAD = 4096  # bytes a request body may hold besides the input
INLINE_MODEL_S = 0.001  # models averaging less than this run on the event loop: a thread hop costs more


class FastCalls:
    """The HTTP handlers' logic of one relayer's fast path, over its book and chain view."""

    def __init__(self, view: ChainView, store: ChannelStore, files: RegisteredFiles, runtime: ModelRuntime,
                 want_file: Callable[[bytes], Any], signer: AttestationSigner, metrics: RelayerMetrics,
                 config: RelayerConfig, rpc: JsonRpc) -> None:
        self.view, self.hub, self.book = view, view.hub, view.book
        self.store, self.files = store, files  # the receipts on disk; the registered model files
        # want_file(digest): starts fetching a model file this relayer lacks (never blocks).
        self.runtime, self.want_file, self.signer = runtime, want_file, signer
        self.metrics, self.config, self.rpc = metrics, config, rpc
        self.relayer = self.hub.address.lower()
        self.body = BodyReader(self.relayer, signer.domain)
        self.max_body = config.max_input_bytes + BODY_OVERHEAD
        self.settle_margin = max(1, config.min_receipt_lifetime // 2)
        self.hot_path_chain_reads = 0  # chain reads made while answering a fast call
        self._locks: dict[tuple[str, int], list] = {}  # [asyncio.Lock, users]: one per call in flight
        self._in_flight = 0  # fast calls being served (event loop thread only)
        self._model_seconds: dict[bytes, float] = {}
        self._model_pool = ThreadPoolExecutor(max(2, os.cpu_count() or 2), thread_name_prefix="relayer-fast-model")
        self._chain_pool = ThreadPoolExecutor(2, thread_name_prefix="relayer-fast-chain")

    def close(self) -> None:
        self._model_pool.shutdown(wait=False, cancel_futures=True)
        self._chain_pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ POST /v1/models/{id}/infer

    async def infer(self, path_model_id: int, body: bytes) -> bytes:
        """Serves one fast call; the JSON answer as bytes, or FastCallError."""
        started = time.perf_counter()
        if self._in_flight >= self.config.max_in_flight:
            error = refuse("busy", f"this relayer is serving {self._in_flight} fast calls already; try again in a "
                           "moment")
            self.metrics.fast_calls_refused.labels(code=error.code).inc()
            raise error
        self._in_flight += 1
        try:
            answer = await self._infer(path_model_id, body)
        except FastCallError as error:
            self.metrics.fast_calls_refused.labels(code=error.code).inc()
            raise
        finally:
            self._in_flight -= 1
        self.metrics.fast_calls_accepted.inc()
        self.metrics.fast_call_seconds.observe(time.perf_counter() - started)
        return answer

    def too_large(self, size: int) -> FastCallError:
        return refuse("bad_request", f"the body is {size} bytes; this relayer takes inputs of at most "
                      f"{self.config.max_input_bytes} bytes")

    async def _infer(self, path_model_id: int, body: bytes) -> bytes:
        if len(body) > self.max_body:
            raise self.too_large(len(body))
        call = self.body.read(path_model_id, body)
        now = self.view.now()
        min_deadline = now + self.config.min_receipt_lifetime
        if call.deadline < min_deadline:
            raise refuse("deadline_too_soon", f"the receipt's deadline {call.deadline} leaves this relayer no time "
                         f"to settle it; sign a deadline of at least {min_deadline}", minDeadline=min_deadline)
        max_deadline = now + self.config.max_receipt_lifetime
        if call.deadline > max_deadline:
            raise refuse("deadline_too_far", f"the receipt's deadline {call.deadline} is further than this relayer "
                         f"holds receipts ({self.config.max_receipt_lifetime} s); sign a deadline of at most "
                         f"{max_deadline}", maxDeadline=max_deadline)
        # Who signed, and whether that key may sign for the caller: from memory only.
        signed_by = recover_digest_address(call.digest, call.signature)
        caller = self.book.callers.get(call.caller)
        if caller is None or caller.spendable == 0:
            raise refuse("no_reservation", f"{call.caller} has no credit reserved for relayer {self.relayer}; "
                         "reserve credit with this relayer first (InferenceEscrow.reserve(relayer, amount), "
                         "Hub.reserve), then pay with receipts (a reservation made a moment ago counts from the "
                         "relayer's next round: retry in a second)", relayer=self.relayer)
        self._check_signer(call, caller, signed_by, now)
        model = self.view.models.get(call.model_id) or await self._load_model(call.model_id)
        if not model.active:
            raise refuse("model_inactive", f"model {call.model_id} is inactive: its owner takes no calls")
        version = call.version or model.latest_version
        if version > model.latest_version:
            raise refuse("bad_request", f"model {call.model_id} has versions 1 to {model.latest_version}; ask for "
                         "one of them, or 0 for the latest")
        digest = self.files.digest(call.model_id, version) or await self._load_digest(call.model_id, version)

        key = (call.caller, call.model_id)
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                answer = await self._serve(call, model, version, digest, now)
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[key]
        return answer

    def _check_signer(self, call: ReceiptCall, caller: CallerView, signed_by: bytes | None, now: int) -> None:
        if signed_by is not None and signed_by == bytes.fromhex(call.caller[2:]):
            return
        key = caller.signer_at(now)
        if signed_by is None or key is None or signed_by != key:
            raise refuse("invalid_signature", f"the signature is neither {call.caller}'s nor its receipt signer "
                         "key's signature of this receipt (EIP-712, domain ModelHub/1 of this escrow); sign the "
                         "receipt exactly as sent. A contract wallet signs with a key it registered with "
                         "InferenceEscrow.setReceiptSigner")
        if caller.next_at and caller.signer_at(caller.next_at) != key and now >= caller.next_at - self.settle_margin:
            raise refuse("signer_expiring", f"{call.caller}'s receipt signer key is replaced at {caller.next_at}, "
                         "too soon for this relayer to settle a receipt it signs; sign with the new key or the "
                         "account's own key", signerChangesAt=caller.next_at)

    async def _serve(self, call: ReceiptCall, model: ModelView, version: int, digest: bytes, now: int) -> bytes:
        """Checks the totals, holds the increase, runs the model, commits the receipt and signs:
        runs with the channel locked."""
        key = (call.caller, call.model_id)
        channel = self.book.channels.get(key) or Channel(call.caller, call.model_id)
        increase = self._check_totals(call, channel, model, now)
        self.book.hold(call.caller, increase)
        try:
            if self._model_seconds.get(digest, 1.0) < INLINE_MODEL_S:
                output, output_hash, input_hash = self._run(call, digest, version)
            else:
                loop = asyncio.get_running_loop()
                output, output_hash, input_hash = await loop.run_in_executor(
                    self._model_pool, self._run, call, digest, version)
            # Shielded: once the commit is under way the channel is updated even if the
            # client goes away, so memory never lags what is on disk. A signer that cannot
            # fail (the key itself) signs while the writer thread waits for the disk; a wallet
            # that may refuse signs first, so no receipt is kept for an unanswered call.
            sign = partial(self.signer.sign, int.from_bytes(call.digest, "big"), call.model_id, version,
                           input_hash, output_hash)
            signature = None if self.signer.direct else sign()
            commit = asyncio.ensure_future(self._commit(channel, call))
            if signature is None:
                signature = sign()
            await asyncio.shield(commit)
        finally:
            self.book.release(call.caller, increase)
        settled_calls, settled_amount = channel.settled_calls, channel.settled_amount
        request_id = int.from_bytes(call.digest, "big")
        return b"".join((
            b'{"modelId":%d,"version":%d,"output":' % (call.model_id, version), output,
            b',"outputHash":"0x', output_hash.hex().encode(),
            b'","attestation":{"requestId":"%d","modelId":%d,"version":%d,"inputHash":"0x'
            % (request_id, call.model_id, version), input_hash.hex().encode(),
            b'","outputHash":"0x', output_hash.hex().encode(),
            b'"},"signature":"0x', signature.hex().encode(),
            b'","channel":{"calls":"%d","amount":"%d","settledCalls":"%d","settledAmount":"%d"}}'
            % (call.calls, call.amount, settled_calls, settled_amount),
        ))

    def _check_totals(self, call: ReceiptCall, channel: Channel, model: ModelView, now: int) -> int:
        """The receipt's increase over the channel, checked against the price; runs on the loop
        with the channel locked."""
        if call.calls != channel.calls + 1:
            raise refuse("out_of_order", f"the channel's last accepted receipt has calls={channel.calls}; sign "
                         f"calls={channel.calls + 1} (totals since the channel opened)", channel=_totals(channel))
        increase = call.amount - channel.amount
        receipt_price = self.receipt_price(model, now)
        most = max(model.price, receipt_price)
        if increase < receipt_price or increase > most:
            raise refuse("wrong_amount", f"the amount must grow by between {receipt_price} and {most} over the "
                         f"last accepted {channel.amount}; it grows by {increase}", price=str(model.price),
                         receiptPrice=str(receipt_price), channel=_totals(channel))
        return increase

    def receipt_price(self, model: ModelView, now: int) -> int:
        """What a new receipt must pay per call: the floor of a price rise while its notice has
        more than `settle_margin` to run (channels holding such receipts are settled then, so
        each settles while the escrow still takes the floor), otherwise the price; never less
        than the escrow's minimum of 1 base unit per call."""
        price = model.price
        if model.floor_price < price and now < model.floor_ends_at - self.settle_margin:
            price = model.floor_price
        return max(price, MIN_RECEIPT_PRICE)

    def _run(self, call: ReceiptCall, digest: bytes, version: int) -> tuple[bytes, bytes, bytes]:
        """Runs the model (on the loop, or in a worker thread for slow models): (output bytes,
        output hash, input hash)."""
        try:
            input_bytes = codec.encode_plain(call.inputs)  # parsed JSON: plain already
            started = time.perf_counter()
            outputs = self.runtime.run(digest, call.inputs)
            # A running average of the model's time decides where its next calls run.
            elapsed = time.perf_counter() - started
            self._model_seconds[digest] = 0.9 * self._model_seconds.get(digest, elapsed) + 0.1 * elapsed
            output = codec.encode_plain(outputs)  # runtime.run returns plain Python
        except (InvalidInputError, ModelExecutionError, InferenceTimeoutError, OutputEncodingError) as error:
            raise refuse("bad_input", str(error)) from None
        except ArtifactNotFoundError:
            # Not held here: this one call is refused (not charged), the file fetched meanwhile.
            fetch = self.want_file(digest)
            retry = max(1, round(fetch.retry_in)) if fetch.rounds else 1
            raise refuse("model_unavailable", f"the model file {digest_to_cid(digest)} is not here yet and is being "
                         f"fetched; call another relayer, or this one again in {retry} s", retryAfter=retry) from None
        except (DigestMismatchError, ModelFileError) as error:
            raise refuse("model_unavailable", f"{error}; call another relayer") from None
        return output, keccak(output), keccak(input_bytes)

    async def _commit(self, channel: Channel, call: ReceiptCall) -> None:
        await self.store.save(channel, call.calls, call.amount, call.deadline, call.signature,
                              alone=self._in_flight == 1)
        self.book.commit(channel, call.calls, call.amount, call.deadline, call.signature)

    # ------------------------------------------------------------------ GET /v1/channels/{caller}/{modelId}

    async def channel_view(self, caller_text: str, model_id_text: str) -> dict[str, Any]:
        try:
            caller = address(caller_text, "caller")
            model_id = uint(model_id_text, "modelId", MAX_UINT256)
        except (ValueError, TypeError) as error:
            raise refuse("bad_request", f"{error}; use /v1/channels/<caller 0x-address>/<modelId>") from None
        model = self.view.models.get(model_id) or await self._load_model(model_id)
        channel = self.book.channels.get((caller, model_id)) or Channel(caller, model_id)
        view = {"caller": caller, "relayer": self.relayer, "modelId": model_id, **_totals(channel),
                "price": str(model.price), "receiptPrice": str(self.receipt_price(model, self.view.now()))}
        known = self.book.callers.get(caller)
        if known is not None:
            available = self.book.available(caller, known)
            view.update(reserved=str(known.reserved), releasing=str(known.releasing), available=str(max(available, 0)))
        if channel.signature:
            # The caller's own signature of the totals: a client resuming the channel can check
            # that it really signed them, instead of taking the relayer's word.
            view["deadline"] = channel.deadline
            view["signature"] = "0x" + channel.signature.hex()
        return view

    # ------------------------------------------------------------------ chain reads off the loop

    async def _load_model(self, model_id: int) -> ModelView:
        """A registered model the hot path has not read yet (once per model: then events keep
        it); an id the registry's events never named is refused without a chain read."""
        if model_id not in self.files.latest:
            raise refuse("unknown_model", f"this relayer knows no model {model_id} on this deployment (list the "
                         "models with `modelhub models list`); a model registered a moment ago is known after the "
                         "relayer's next round: retry in a few seconds")
        self.hot_path_chain_reads += 1
        self.metrics.fast_chain_reads.inc()
        loop = asyncio.get_running_loop()
        model = await loop.run_in_executor(self._chain_pool, self.view.read_model, model_id)
        if model is None:
            raise refuse("unknown_model", f"there is no model {model_id} on this deployment; list the models with "
                         "`modelhub models list`")
        return model

    async def _load_digest(self, model_id: int, version: int) -> bytes:
        self.hot_path_chain_reads += 1
        self.metrics.fast_chain_reads.inc()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._chain_pool, self.hub.version_digest, model_id, version)

    def status(self) -> dict[str, Any]:
        """The fast-call part of /healthz."""
        channels = self.book.all_channels()
        return {"channels": len(channels), "openChannels": sum(1 for c in channels if c.open),
                "unsettledAmount": str(sum(max(c.unsettled, 0) for c in channels)),
                "callers": len(self.book.callers), "locks": len(self._locks),
                "hotPathChainReads": self.hot_path_chain_reads, "rpcCalls": self.rpc.calls,
                "registeredFiles": len(self.files.digests),
                "fastSigning": self.signer.direct, "receiptCommits": self.store.commits,
                "receiptsCommitted": self.store.saved,
                "receiptCommitSeconds": round(self.store.commit_seconds, 3)}


def _totals(channel: Channel) -> dict[str, str]:
    return {"calls": str(channel.calls), "amount": str(channel.amount),
            "settledCalls": str(channel.settled_calls), "settledAmount": str(channel.settled_amount)}
