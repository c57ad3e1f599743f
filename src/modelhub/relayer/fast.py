"""Fast calls: the relayer's hot path for off-chain calls paid with signed receipts
(POST /v1/models/{modelId}/infer, docs/fast-calls.md), and the settlement of those receipts.

The HTTP event loop checks a receipt against chain state held in memory (no RPC for a caller
it knows), runs the model, commits the receipt (channels.py) and answers with a signed
attestation. The daemon thread refreshes that chain state and settles receipts in batches.

Exposure: what the relayer can answer for and never be paid.
* Credit spent on chain between two refreshes. The cache of a caller's credit is re-read every
  `chain_refresh_interval` seconds (and at once after its Deposited/WithdrawalAnnounced/
  ReceiptsEnabled events). Meanwhile the caller may spend credit in on-chain requests, or
  another relayer may settle receipts it holds (receipts held by other relayers are invisible
  to this one until they settle). Withdrawals are not part of this window: an account that
  signs receipts must announce them `withdrawalDelay` ahead, the announced amount is
  subtracted at once, and its channels are settled as soon as the announcement is seen.
* A price rise under notice: receipts paying the old price are settled before the notice
  ends; within `min_receipt_lifetime / 2` of the end, receipts must pay the new price.
* A first-time caller is read from the chain off the event loop while the daemon may be
  settling its channels (after a restart): its credit can be off by one settlement until the
  next refresh.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import requests
from eth_utils import keccak as _eth_keccak

from .. import codec
from ..attestation import ATTESTATION_TYPEHASH, Attestation
from ..contracts import ReceiptSkipReason, chain_errors
from ..errors import (
    ArtifactNotFoundError,
    DigestMismatchError,
    InferenceTimeoutError,
    InvalidInputError,
    ModelExecutionError,
    ModelFileError,
    OutputEncodingError,
)
from ..receipts import RECEIPT_TYPEHASH, FastSigner, Receipt, domain_separator, recover_digest_address
from ..runtime import ModelRuntime
from .channels import Channel, ChannelStore
from .metrics import RelayerMetrics

log = logging.getLogger("modelhub.relayer")

MAX_CALLS = 2**64 - 1  # the escrow's limits: beyond them a receipt can never settle
MAX_AMOUNT = 2**160 - 1
ERC1271_MAGIC = bytes.fromhex("1626ba7e")  # isValidSignature(bytes32,bytes)
_WORD = 32
_BODY_OVERHEAD = 4096  # bytes a request body may hold besides the input
INLINE_MODEL_S = 0.001  # models averaging less than this run on the event loop: a thread hop costs more
CALLER_RELOAD_S = 1.0  # a caller read as "receipts not enabled" is read again after this long
UNKNOWN_MODEL_RELOAD_S = 5.0  # an unknown model id is asked again after this long


try:  # safe-pysha3 (requirements.lock): ~3x faster than eth_hash's pycryptodome backend
    from sha3 import keccak_256 as _keccak_256

    def keccak(data: bytes) -> bytes:
        return _keccak_256(data).digest()
except ImportError:  # pragma: no cover -- same digest, slower
    def keccak(data: bytes) -> bytes:
        return _eth_keccak(data)


class FastCallError(Exception):
    """A refused fast call: HTTP `status`, a stable `code`, a message saying what to do, and
    extra fields for the client. A refused call is not charged."""

    def __init__(self, status: int, code: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields


@dataclass(frozen=True)
class CallerView:
    """What the hot path knows of a caller (replaced whole, so a reader never sees half an update)."""

    credit: int
    receipts_enabled: bool
    announced: int
    is_contract: bool
    loaded_at: float


@dataclass(frozen=True)
class ModelView:
    """What the hot path knows of a model."""

    price: int
    receipt_price: int  # the least a receipt pays per call now
    notice_ends_at: int  # when a price rise binds receipts; 0 when none is pending
    active: bool
    latest_version: int


@dataclass
class FastConfig:
    """The fast-call options of RelayerConfig."""

    settle_threshold: int
    settle_interval: float
    min_receipt_lifetime: int
    settle_batch_size: int
    chain_refresh_interval: float
    max_input_bytes: int


# ---------------------------------------------------------------------------- signing


class AttestationSigner:
    """Signs attestations of fast calls: through libsecp256k1 when the account's key can be
    read (Ape test accounts; keyfile accounts with APE_ACCOUNTS_<alias>_PASSPHRASE set),
    otherwise through the Ape account, about 10x slower."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self._domain = domain_separator(hub.deployment.chain_id, hub.deployment.inference_escrow)
        key = private_key_of(hub.account)
        self._fast = FastSigner(key) if key is not None else None
        if self._fast is not None and self._fast.address != hub.address:
            log.warning("the key found for %s signs as %s; signing through the account instead",
                        hub.address, self._fast.address)
            self._fast = None
        if self._fast is None:
            log.info("signing fast-call attestations through the Ape account (slow path): set "
                     "APE_ACCOUNTS_<alias>_PASSPHRASE to let the relayer sign with the key directly")

    @property
    def fast(self) -> bool:
        return self._fast is not None

    def digest(self, request_id: int, model_id: int, version: int, input_hash: bytes, output_hash: bytes) -> bytes:
        """The attestation's EIP-712 digest, built from raw words (no ABI encoder per call)."""
        struct = keccak(ATTESTATION_TYPEHASH + request_id.to_bytes(_WORD, "big") + model_id.to_bytes(_WORD, "big")
                        + version.to_bytes(_WORD, "big") + input_hash + output_hash)
        return keccak(b"\x19\x01" + self._domain + struct)

    def sign(self, request_id: int, model_id: int, version: int, input_hash: bytes, output_hash: bytes) -> bytes:
        if self._fast is not None:
            return self._fast.sign_digest(self.digest(request_id, model_id, version, input_hash, output_hash))
        return self.hub.sign_attestation(Attestation(request_id, model_id, version, input_hash, output_hash))


def private_key_of(account: Any) -> bytes | None:
    """The raw private key of an Ape account, when it can be had without a prompt."""
    key = getattr(account, "private_key", None)  # Ape's test accounts
    if key:
        return bytes.fromhex(key.removeprefix("0x")) if isinstance(key, str) else bytes(key)
    alias, keyfile = getattr(account, "alias", None), None
    try:
        keyfile = getattr(account, "keyfile", None)  # Ape keyfile accounts: the encrypted JSON
    except Exception:  # noqa: BLE001 -- an unreadable keyfile: Ape reports it when it signs
        return None
    passphrase = os.environ.get(f"APE_ACCOUNTS_{alias}_PASSPHRASE") if alias else None
    if not keyfile or not passphrase:
        return None
    from eth_account import Account

    try:
        return bytes(Account.decrypt(keyfile, passphrase))
    except ValueError:
        log.warning("APE_ACCOUNTS_%s_PASSPHRASE does not decrypt that account's keyfile", alias)
        return None


# ---------------------------------------------------------------------------- the hot path


@dataclass(frozen=True)
class _Call:
    """A parsed request body."""

    inputs: dict[str, Any]
    version: int
    caller: str  # lowercase 0x-hex
    model_id: int
    calls: int
    amount: int
    deadline: int
    signature: bytes
    digest: bytes  # the receipt's EIP-712 digest


class FastCalls:
    """The fast-call side of one relayer: the in-memory chain view, the channels, the HTTP
    handlers' logic (`infer`, `channel_view`) and the daemon's side (`tick`)."""

    def __init__(self, hub: Any, runtime: ModelRuntime, channels: ChannelStore, metrics: RelayerMetrics,
                 config: FastConfig, ensure_artifact: Callable[[bytes], None], signer: AttestationSigner) -> None:
        self.hub = hub
        self.runtime = runtime
        self.channel_store = channels
        self.metrics = metrics
        self.config = config
        self.ensure_artifact = ensure_artifact
        self.signer = signer
        deployment = hub.deployment
        self.relayer = hub.address.lower()
        self._relayer_word = bytes.fromhex(self.relayer[2:]).rjust(_WORD, b"\0")
        self._domain = domain_separator(deployment.chain_id, deployment.inference_escrow)
        self.max_body = config.max_input_bytes + _BODY_OVERHEAD
        self.settle_margin = max(1, config.min_receipt_lifetime // 2)

        # Chain state for the hot path; written by the daemon thread and the loader pool.
        self.callers: dict[str, CallerView] = {}
        self.models: dict[int, ModelView] = {}
        self.digests: dict[tuple[int, int], bytes] = {}
        self._unknown_models: dict[int, float] = {}
        self.chain_time = 0  # latest block timestamp the daemon saw

        # Channels; `_book` guards the money: settled totals, credit and reservations, which
        # the loop and the daemon thread both change.
        self._book = threading.Lock()
        self.channels: dict[tuple[str, int], Channel] = {}
        self._by_caller: dict[str, list[Channel]] = {}
        self._reserved: dict[str, int] = {}  # increases of calls being run, per caller
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._in_flight = 0  # fast calls being served (event loop thread only)
        for channel in channels.load():
            self._add_channel(channel)

        self._model_seconds: dict[bytes, float] = {}
        self._model_pool = ThreadPoolExecutor(max(2, os.cpu_count() or 2), thread_name_prefix="relayer-fast-model")
        self._chain_pool = ThreadPoolExecutor(2, thread_name_prefix="relayer-fast-chain")

        # Daemon-side state.
        self._recovered = False
        self._event_cursor: int | None = None
        self._last_refresh = 0.0
        self._last_interval = time.monotonic()
        self._withdrawing: set[str] = set()
        self._notice_settled: dict[int, int] = {}
        self._retry_at: dict[tuple[str, int], float] = {}
        self._event_abis: list | None = None
        self._balance_selector: str | None = None
        self._rpc = requests.Session()

    def close(self) -> None:
        self._model_pool.shutdown(wait=False, cancel_futures=True)
        self._chain_pool.shutdown(wait=False, cancel_futures=True)

    def now(self) -> int:
        """Unix time as the escrow will judge deadlines: a dev chain's clock may run ahead."""
        return max(int(time.time()), self.chain_time)

    # ------------------------------------------------------------------ POST /v1/models/{id}/infer

    async def infer(self, path_model_id: int, body: bytes) -> bytes:
        """Serves one fast call; the JSON answer as bytes, or FastCallError."""
        started = time.perf_counter()
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

    async def _infer(self, path_model_id: int, body: bytes) -> bytes:
        if len(body) > self.max_body:
            raise FastCallError(400, "bad_request", f"the body is {len(body)} bytes; this relayer takes inputs "
                                f"of at most {self.config.max_input_bytes} bytes")
        call = self._parse(path_model_id, body)
        now = self.now()
        min_deadline = now + self.config.min_receipt_lifetime
        if call.deadline < min_deadline:
            raise FastCallError(400, "deadline_too_soon", f"the receipt's deadline {call.deadline} leaves this "
                                f"relayer no time to settle it; sign a deadline of at least {min_deadline}",
                                minDeadline=min_deadline)
        signed = recover_digest_address(call.digest, call.signature) == bytes.fromhex(call.caller[2:])
        caller = self.callers.get(call.caller)
        if caller is None or (not caller.receipts_enabled and time.time() - caller.loaded_at > CALLER_RELOAD_S):
            caller = await self._load_caller(call.caller)
        if not signed and not (caller.is_contract and await self._erc1271_valid(call)):
            raise FastCallError(401, "invalid_signature", f"the signature is not {call.caller}'s signature of this "
                                "receipt (EIP-712, domain ModelHub/1 of this escrow); sign the receipt exactly as sent")
        if not caller.receipts_enabled:
            raise FastCallError(403, "receipts_not_enabled", f"{call.caller} has not enabled receipts; call "
                                "InferenceEscrow.enableReceipts() once (Hub.enable_receipts) before paying with them")
        model = self.models.get(call.model_id) or await self._load_model(call.model_id)
        if not model.active:
            raise FastCallError(409, "model_inactive", f"model {call.model_id} is inactive: its owner takes no calls")
        version = call.version or model.latest_version
        if version > model.latest_version:
            raise FastCallError(400, "bad_request", f"model {call.model_id} has versions 1 to "
                                f"{model.latest_version}; ask for one of them, or 0 for the latest")
        digest = self.digests.get((call.model_id, version)) or await self._load_digest(call.model_id, version)

        key = (call.caller, call.model_id)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            channel = self.channels.get(key) or Channel(call.caller, call.model_id)
            increase = self._check_totals(call, channel, model, now)
            self._reserve(call.caller, increase)
            try:
                if self._model_seconds.get(digest, 1.0) < INLINE_MODEL_S:
                    output, output_hash, input_hash = self._run(call, digest, version)
                else:
                    loop = asyncio.get_running_loop()
                    output, output_hash, input_hash = await loop.run_in_executor(
                        self._model_pool, self._run, call, digest, version)
                # Shielded: once the commit is under way the channel is updated even if the
                # client goes away, so memory never lags what is on disk. A fast signer (it
                # cannot fail) signs while the writer thread waits for the disk; a wallet
                # that may refuse signs first, so no receipt is kept for an unanswered call.
                sign = partial(self.signer.sign, int.from_bytes(call.digest, "big"), call.model_id, version,
                               input_hash, output_hash)
                signature = None if self.signer.fast else sign()
                commit = asyncio.ensure_future(self._commit(channel, call))
                if signature is None:
                    signature = sign()
                await asyncio.shield(commit)
            finally:
                with self._book:
                    self._reserved[call.caller] -= increase
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

    def _parse(self, path_model_id: int, body: bytes) -> _Call:
        """The call in a request body; FastCallError 400 bad_request / wrong_channel."""
        # Nesting is checked before parsing (see codec.MAX_NESTING); a body with few brackets
        # cannot be deep, which spares the character scan on every small call.
        if body.count(b"[") + body.count(b"{") > codec.MAX_NESTING:
            try:
                codec._check_nesting(body.decode("utf-8", "replace"))
            except InvalidInputError as error:
                raise FastCallError(400, "bad_request", str(error)) from None
        try:
            data = json.loads(body, parse_constant=_refuse_constant)
            inputs, receipt, signature_text = data["input"], data["receipt"], data["signature"]
            version = data.get("version") or 0
            if not isinstance(inputs, dict) or not isinstance(receipt, dict) or type(version) is not int:
                raise ValueError("input and receipt must be JSON objects, version a number")
            if not 0 <= version < 2**32:
                raise ValueError("version must be a uint32")
            caller = _address(receipt["caller"], "caller")
            relayer = _address(receipt["relayer"], "relayer")
            model_id = _uint(receipt["modelId"], "modelId", 2**256 - 1)
            calls = _uint(receipt["calls"], "calls", MAX_CALLS)
            amount = _uint(receipt["amount"], "amount", MAX_AMOUNT)
            deadline = _uint(receipt["deadline"], "deadline", 2**64 - 1)
            if not isinstance(signature_text, str) or signature_text[:2] not in ("0x", "0X"):
                raise ValueError("signature must be 0x-hex")
            signature = bytes.fromhex(signature_text[2:])
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
            detail = f"missing {error}" if isinstance(error, KeyError) else str(error)
            raise FastCallError(400, "bad_request", f"malformed request ({detail[:200]}); send "
                                '{"input": {...}, "receipt": {"caller", "relayer", "modelId", "calls", "amount", '
                                '"deadline"}, "signature": "0x..."} as in docs/fast-calls.md') from None
        if relayer != self.relayer or model_id != path_model_id:
            raise FastCallError(400, "wrong_channel", f"the receipt names relayer {relayer} and model {model_id}; "
                                f"this is relayer {self.relayer} serving model {path_model_id}: sign a receipt for them")
        struct = keccak(RECEIPT_TYPEHASH + bytes.fromhex(caller[2:]).rjust(_WORD, b"\0") + self._relayer_word
                        + model_id.to_bytes(_WORD, "big") + calls.to_bytes(_WORD, "big")
                        + amount.to_bytes(_WORD, "big") + deadline.to_bytes(_WORD, "big"))
        digest = keccak(b"\x19\x01" + self._domain + struct)
        return _Call(inputs, version, caller, model_id, calls, amount, deadline, signature, digest)

    def _check_totals(self, call: _Call, channel: Channel, model: ModelView, now: int) -> int:
        """The receipt's increase over the channel, checked against the price and the caller's
        cover; runs on the loop with the channel locked."""
        if call.calls != channel.calls + 1:
            raise FastCallError(409, "out_of_order", f"the channel's last accepted receipt has calls={channel.calls}; "
                                f"sign calls={channel.calls + 1} (totals since the channel opened)",
                                channel=self._channel_totals(channel))
        increase = call.amount - channel.amount
        receipt_price = self.receipt_price(model, now)
        if increase < receipt_price or increase > model.price:
            raise FastCallError(409, "wrong_amount", f"the amount must grow by between {receipt_price} and "
                                f"{model.price} over the last accepted {channel.amount}; it grows by {increase}",
                                price=str(model.price), receiptPrice=str(receipt_price),
                                channel=self._channel_totals(channel))
        return increase

    def receipt_price(self, model: ModelView, now: int) -> int:
        """What a new receipt must pay per call: near the end of a price notice, the new price
        already, so that no receipt accepted now settles underpriced."""
        if model.notice_ends_at and model.notice_ends_at - now <= self.settle_margin:
            return model.price
        return model.receipt_price

    def _reserve(self, caller: str, increase: int) -> None:
        view = self.callers[caller]
        with self._book:
            reserved = self._reserved.get(caller, 0)
            available = view.credit - view.announced - self._unsettled(caller) - reserved
            if increase > available:
                raise FastCallError(402, "insufficient_credit", f"{caller} has {max(available, 0)} of credit this "
                                    f"relayer can count on (credit {view.credit}, announced withdrawal "
                                    f"{view.announced}, unsettled here {self._unsettled(caller) + reserved}) and this "
                                    f"call needs {increase}; deposit more credit or wait for settlement",
                                    available=str(max(available, 0)), needed=str(increase))
            self._reserved[caller] = reserved + increase

    def _unsettled(self, caller: str) -> int:
        return sum(channel.amount - channel.settled_amount for channel in self._by_caller.get(caller, ()))

    def _run(self, call: _Call, digest: bytes, version: int) -> tuple[bytes, bytes, bytes]:
        """Runs the model (on the loop, or in a worker thread for slow models): (output bytes,
        output hash, input hash)."""
        try:
            input_bytes = codec.encode_plain(call.inputs)  # parsed JSON: plain already
            started = time.perf_counter()
            try:
                outputs = self.runtime.run(digest, call.inputs)
            except ArtifactNotFoundError:
                self.ensure_artifact(digest)  # fetches it from peers, or raises
                outputs = self.runtime.run(digest, call.inputs)
            else:
                # A running average of the model's time decides where its next calls run.
                elapsed = time.perf_counter() - started
                self._model_seconds[digest] = 0.9 * self._model_seconds.get(digest, elapsed) + 0.1 * elapsed
            output = codec.encode_plain(outputs)  # runtime.run returns plain Python
        except (InvalidInputError, ModelExecutionError, InferenceTimeoutError, OutputEncodingError) as error:
            raise FastCallError(422, "bad_input", str(error)) from None
        except (ArtifactNotFoundError, DigestMismatchError, ModelFileError) as error:
            raise FastCallError(503, "model_unavailable", f"{error}; try another relayer") from None
        return output, keccak(output), keccak(input_bytes)

    async def _commit(self, channel: Channel, call: _Call) -> None:
        await self.channel_store.save(channel, call.calls, call.amount, call.deadline, call.signature,
                                      alone=self._in_flight == 1)
        with self._book:
            channel.calls, channel.amount = call.calls, call.amount
            channel.deadline, channel.signature = call.deadline, call.signature
            if (channel.caller, channel.model_id) not in self.channels:
                self._add_channel(channel)

    def _add_channel(self, channel: Channel) -> None:
        self.channels[(channel.caller, channel.model_id)] = channel
        self._by_caller.setdefault(channel.caller, []).append(channel)

    def _channel_totals(self, channel: Channel) -> dict[str, str]:
        return {"calls": str(channel.calls), "amount": str(channel.amount),
                "settledCalls": str(channel.settled_calls), "settledAmount": str(channel.settled_amount)}

    # ------------------------------------------------------------------ GET /v1/channels/{caller}/{modelId}

    async def channel_view(self, caller_text: str, model_id_text: str) -> dict[str, Any]:
        try:
            caller = _address(caller_text, "caller")
            model_id = _uint(model_id_text, "modelId", 2**256 - 1)
        except (ValueError, TypeError) as error:
            raise FastCallError(400, "bad_request", f"{error}; use /v1/channels/<caller 0x-address>/<modelId>") from None
        model = self.models.get(model_id) or await self._load_model(model_id)
        channel = self.channels.get((caller, model_id)) or Channel(caller, model_id)
        view = {"caller": caller, "relayer": self.relayer, "modelId": model_id, **self._channel_totals(channel),
                "price": str(model.price), "receiptPrice": str(self.receipt_price(model, self.now()))}
        if channel.signature:
            # The caller's own signature of the totals: a client resuming the channel can check
            # that it really signed them, instead of taking the relayer's word.
            view["deadline"] = channel.deadline
            view["signature"] = "0x" + channel.signature.hex()
        return view

    # ------------------------------------------------------------------ chain reads off the loop

    async def _load_caller(self, caller: str) -> CallerView:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._chain_pool, self.read_caller, caller)

    async def _load_model(self, model_id: int) -> ModelView:
        asked = self._unknown_models.get(model_id)
        if asked is not None and time.monotonic() - asked < UNKNOWN_MODEL_RELOAD_S:
            model = None
        else:
            loop = asyncio.get_running_loop()
            model = await loop.run_in_executor(self._chain_pool, self.read_model, model_id)
        if model is None:
            raise FastCallError(404, "unknown_model", f"there is no model {model_id} on this deployment; "
                                "list the models with `modelhub models list`")
        return model

    async def _load_digest(self, model_id: int, version: int) -> bytes:
        loop = asyncio.get_running_loop()
        digest = await loop.run_in_executor(self._chain_pool, self.hub.version_digest, model_id, version)
        self.digests[(model_id, version)] = digest
        return digest

    async def _erc1271_valid(self, call: _Call) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._chain_pool, self.erc1271_valid, call.caller, call.digest,
                                          call.signature)

    def read_caller(self, caller: str) -> CallerView:
        """Reads a caller's credit, receipts flag and announced withdrawal; caches and returns it."""
        from ape import chain

        credit = self.hub.balance(caller)
        notice = self.hub.withdrawal_notice(caller)
        known = self.callers.get(caller)
        if known is not None:
            is_contract = known.is_contract
        else:
            with chain_errors():
                is_contract = len(chain.provider.get_code(_checksum(caller))) > 0
        view = CallerView(credit, notice.receipts_enabled, notice.announced, is_contract, time.time())
        self.callers[caller] = view
        return view

    def read_model(self, model_id: int) -> ModelView | None:
        """Reads a model's price, receipt price, state and latest version; caches it. None if unknown."""
        registry = self.hub.contracts.registry
        # Read here rather than through Hub.price_notice, which unpacks receiptTerms' four
        # values as two (reported; hub.py is not the relayer's).
        with chain_errors():
            exists, receipt_price, _, _ = registry.receiptTerms(model_id)
            if not exists:
                self._unknown_models[model_id] = time.monotonic()
                return None
            _, ends_at = registry.priceNotice(model_id)
            _, price, latest, active, _, _ = registry.getModel(model_id)
        view = ModelView(int(price), int(receipt_price), int(ends_at), bool(active), int(latest))
        self.models[model_id] = view
        self._unknown_models.pop(model_id, None)
        return view

    def erc1271_valid(self, caller: str, digest: bytes, signature: bytes) -> bool:
        """Whether the contract at `caller` accepts `signature` of `digest` (ERC-1271)."""
        from ape import chain

        data = (ERC1271_MAGIC + digest + (64).to_bytes(_WORD, "big") + len(signature).to_bytes(_WORD, "big")
                + signature + b"\0" * (-len(signature) % _WORD))
        try:
            with chain_errors():
                result = chain.provider.make_request("eth_call", [{"to": _checksum(caller), "data": "0x" + data.hex()},
                                                                  "latest"])
        except Exception as error:  # noqa: BLE001 -- a reverting wallet simply did not accept it
            log.debug("isValidSignature of %s failed: %s", caller, error)
            return False
        raw = bytes.fromhex(str(result).removeprefix("0x")) if isinstance(result, str) else bytes(result)
        return raw[:4] == ERC1271_MAGIC

    # ------------------------------------------------------------------ the daemon's side

    def tick(self, chain_head: int, chain_time: int) -> bool:
        """One round of the daemon: follow events, refresh the chain view, settle what is due.
        True if it sent a settlement."""
        self.chain_time = max(self.chain_time, chain_time)
        if not self._recovered:
            self._recover()
            self._recovered = True
        self._follow(chain_head)
        if time.monotonic() - self._last_refresh >= self.config.chain_refresh_interval:
            self.refresh()
        return self.settle_due()

    def _recover(self) -> None:
        """After a (re)start: reads what the escrow settled of the stored open channels (a batch
        may have landed just before a crash) and settles the rest at once."""
        open_channels = [channel for channel in list(self.channels.values()) if channel.open]
        for channel in open_channels:
            self._sync_from_chain(channel)
        for caller in {channel.caller for channel in open_channels}:
            self.read_caller(caller)
        still_open = [channel for channel in open_channels if channel.open]
        if still_open:
            log.info("recovered %d unsettled receipt channel(s) from %s; settling them", len(still_open),
                     self.channel_store.path)
            self._settle(still_open, "restart")

    def refresh(self) -> None:
        """Re-reads every cached caller's credit and every cached model (the exposure window is
        this period). A caller's receipts flag and announced withdrawal change only with events,
        which `_follow` reads."""
        self._last_refresh = time.monotonic()
        callers = list(self.callers)
        credits = self._read_credits(callers)
        with self._book:
            for caller, credit in credits.items():
                view = self.callers[caller]
                if view.credit != credit:
                    self.callers[caller] = replace(view, credit=credit)
        for model_id in list(self.models):
            self.read_model(model_id)
        self._update_gauges()

    def _read_credits(self, callers: list[str]) -> dict[str, int]:
        """balanceOf of many callers in one JSON-RPC batch: an Ape contract call costs
        milliseconds of CPU under the GIL, which every fast call in flight would wait for."""
        from ape import chain

        if not callers:
            return {}
        uri = getattr(chain.provider, "http_uri", None)
        if not isinstance(uri, str) or not uri.startswith("http"):
            return {caller: self.hub.balance(caller) for caller in callers}
        if self._balance_selector is None:
            abi = self.hub.contracts.escrow.balanceOf.abis[0]
            self._balance_selector = "0x" + keccak(abi.selector.encode()).hex()[:8]
        escrow = self.hub.deployment.inference_escrow
        batch = [{"jsonrpc": "2.0", "id": index, "method": "eth_call",
                  "params": [{"to": escrow, "data": self._balance_selector + "0" * 24 + caller[2:]}, "latest"]}
                 for index, caller in enumerate(callers)]
        replies = self._rpc.post(uri, json=batch, timeout=30).json()
        credits = {}
        for reply in replies if isinstance(replies, list) else []:
            index = reply.get("id")
            if isinstance(index, int) and 0 <= index < len(callers) and isinstance(reply.get("result"), str):
                credits[callers[index]] = int(reply["result"], 16)
        for caller in callers:  # a node that refuses batches, or an item that failed
            if caller not in credits:
                credits[caller] = self.hub.balance(caller)
        return credits

    def _follow(self, head: int) -> None:
        """Reads the escrow's and registry's events that change what the hot path knows."""
        if self._event_cursor is None:
            self._event_cursor = head + 1  # the first refresh reads everything as of now
            self._last_refresh = 0.0
            return
        if head < self._event_cursor:
            return
        from ape import chain
        from ape.types import LogFilter

        escrow, registry = self.hub.contracts.escrow, self.hub.contracts.registry
        if self._event_abis is None:
            self._event_abis = [escrow.ReceiptsEnabled.abi, escrow.WithdrawalAnnounced.abi, escrow.Deposited.abi,
                                escrow.Withdrawn.abi,
                                registry.PriceChanged.abi, registry.PriceNoticeStarted.abi,
                                registry.ModelActiveChanged.abi, registry.VersionPublished.abi]
        start, end = self._event_cursor, min(head, self._event_cursor + 1_999)
        log_filter = LogFilter(addresses=[escrow.address, registry.address], events=self._event_abis,
                               start_block=start, stop_block=end)
        log_filter = log_filter.model_copy(update={"topic_filter": [list(log_filter.selectors)]})
        callers: set[str] = set()
        models: set[int] = set()
        with chain_errors():
            for event in chain.provider.get_contract_logs(log_filter):
                name = event.event_name
                if name == "WithdrawalAnnounced":
                    caller = str(event.account).lower()
                    callers.add(caller)
                    if int(event.amount) > 0 and caller in self._by_caller:
                        log.info("%s announced a withdrawal of %s: settling its channels now", caller, event.amount)
                        self._withdrawing.add(caller)
                elif name in ("ReceiptsEnabled", "Deposited", "Withdrawn"):
                    callers.add(str(event.account).lower())
                else:
                    models.add(int(event.modelId))
        self._event_cursor = end + 1
        for caller in callers & set(self.callers):
            self.read_caller(caller)
        for model_id in models & set(self.models):
            self.read_model(model_id)

    def settle_due(self) -> bool:
        """Settles the channels a trigger names: threshold, interval, withdrawal, deadline, price notice."""
        now = self.now()
        clock = time.monotonic()
        interval_due = clock - self._last_interval >= self.config.settle_interval
        notices = {model_id: model.notice_ends_at for model_id, model in list(self.models.items())
                   if model.notice_ends_at and model.notice_ends_at - now <= self.settle_margin
                   and self._notice_settled.get(model_id) != model.notice_ends_at}
        due: dict[str, list[Channel]] = {}
        with self._book:
            candidates = [channel for channel in self.channels.values()
                          if channel.open and channel.calls > channel.refused_calls]
        for channel in candidates:
            key = (channel.caller, channel.model_id)
            if self._retry_at.get(key, 0) > clock:
                continue
            if channel.caller in self._withdrawing:
                reason = "withdrawal announced"
            elif channel.unsettled >= self.config.settle_threshold:
                reason = "threshold"
            elif channel.deadline - now <= self.settle_margin:
                reason = "deadline near"
            elif channel.model_id in notices:
                reason = "price notice ending"
            elif interval_due:
                reason = "interval"
            else:
                continue
            due.setdefault(reason, []).append(channel)
        if interval_due:
            self._last_interval = clock
        if not due:
            return False
        for reason, channels in due.items():
            self._settle(channels, reason)
        self._notice_settled.update(notices)
        self._withdrawing.clear()
        return True

    def _settle(self, channels: list[Channel], reason: str) -> None:
        """settleReceipts on the newest receipt of each channel, `settle_batch_size` per transaction."""
        for start in range(0, len(channels), self.config.settle_batch_size):
            chunk = channels[start:start + self.config.settle_batch_size]
            with self._book:  # one consistent receipt per channel, even while calls come in
                items = [(channel, Receipt(_checksum(channel.caller), self.hub.address, channel.model_id,
                                           channel.calls, channel.amount, channel.deadline), channel.signature)
                         for channel in chunk]
            outcomes = self.hub.settle_receipts([(receipt, signature) for _, receipt, signature in items])
            self.metrics.fast_settlement_batches.inc()
            settled_rows = []
            settled_calls = settled_amount = 0
            for (channel, receipt, _), outcome in zip(items, outcomes):
                if outcome.settled:
                    with self._book:
                        new_calls = receipt.calls - channel.settled_calls
                        paid = receipt.amount - channel.settled_amount
                        channel.settled_calls, channel.settled_amount = receipt.calls, receipt.amount
                        view = self.callers.get(channel.caller)
                        if view is not None:  # the escrow took `paid` from the credit
                            self.callers[channel.caller] = replace(view, credit=view.credit - paid)
                    settled_rows.append((channel.caller, channel.model_id, receipt.calls, receipt.amount))
                    settled_calls += new_calls
                    settled_amount += paid
                    self._retry_at.pop((channel.caller, channel.model_id), None)
                else:
                    self._skipped(channel, receipt, outcome.skip_reason)
            self.channel_store.record_settled(settled_rows)
            self.metrics.fast_calls_settled.inc(settled_calls)
            self.metrics.fast_amount_settled.inc(settled_amount)
            log.info("settled %d of %d receipt channel(s) in one transaction (%s): %d call(s), %d base units",
                     len(settled_rows), len(items), reason, settled_calls, settled_amount)
        self._update_gauges()

    def _skipped(self, channel: Channel, receipt: Receipt, reason: ReceiptSkipReason) -> None:
        key = (channel.caller, channel.model_id)
        self.metrics.fast_receipts_skipped.labels(reason=reason.name.lower()).inc()
        if reason is ReceiptSkipReason.NOT_NEWER:
            # Someone submitted this receipt (or a newer one) first: the chain says what is settled.
            log.info("receipt of %s on model %d (calls=%d) was already settled; reading the channel", channel.caller,
                     channel.model_id, receipt.calls)
            self._sync_from_chain(channel)
        elif reason in (ReceiptSkipReason.NOT_ACTIVE_RELAYER, ReceiptSkipReason.INSUFFICIENT_CREDIT):
            # May change (the relayer bonds again, the caller deposits): retried at the next interval.
            self._retry_at[key] = time.monotonic() + self.config.settle_interval
            hint = ("register this relayer with a bond (`modelhub relayer register`)"
                    if reason is ReceiptSkipReason.NOT_ACTIVE_RELAYER else "the caller spent its credit elsewhere")
            log.error("receipt of %s on model %d (calls=%d) skipped: %s; %s; retrying in %gs", channel.caller,
                      channel.model_id, receipt.calls, reason.name, hint, self.config.settle_interval)
        else:
            # This receipt can never settle; a newer receipt of the channel (cumulative) still can.
            channel.refused_calls = receipt.calls
            log.error("receipt of %s on model %d (calls=%d) was refused by the escrow: %s; waiting for a newer "
                      "receipt of that channel", channel.caller, channel.model_id, receipt.calls, reason.name)

    def _sync_from_chain(self, channel: Channel) -> None:
        calls, amount = self.hub.channel(_checksum(channel.caller), self.hub.address, channel.model_id)
        if calls == channel.settled_calls and amount == channel.settled_amount:
            return
        with self._book:
            paid = amount - channel.settled_amount
            channel.settled_calls, channel.settled_amount = calls, amount
            view = self.callers.get(channel.caller)
            if view is not None and paid > 0:
                self.callers[channel.caller] = replace(view, credit=view.credit - paid)
        self.channel_store.record_settled([(channel.caller, channel.model_id, calls, amount)])

    def _update_gauges(self) -> None:
        with self._book:
            channels = list(self.channels.values())
        self.metrics.fast_unsettled_amount.set(sum(max(c.unsettled, 0) for c in channels))
        self.metrics.fast_open_channels.set(sum(1 for c in channels if c.open))

    def status(self) -> dict[str, Any]:
        """The fast-call part of /healthz."""
        with self._book:
            channels = list(self.channels.values())
        return {"channels": len(channels), "openChannels": sum(1 for c in channels if c.open),
                "unsettledAmount": str(sum(max(c.unsettled, 0) for c in channels)),
                "fastSigning": self.signer.fast, "receiptCommits": self.channel_store.commits,
                "receiptsCommitted": self.channel_store.saved,
                "receiptCommitSeconds": round(self.channel_store.commit_seconds, 3)}


# ---------------------------------------------------------------------------- parsing helpers


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


def _address(value: Any, name: str) -> str:
    """A 0x-address as lowercase hex; ValueError otherwise."""
    if not isinstance(value, str) or len(value) != 42 or value[:2] not in ("0x", "0X"):
        raise ValueError(f"{name} must be a 0x-address of 40 hex digits")
    int(value[2:], 16)  # raises ValueError on a non-hex digit
    return "0x" + value[2:].lower()


def _uint(value: Any, name: str, maximum: int) -> int:
    """A decimal string or a JSON integer within 0..maximum; ValueError otherwise."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 78:
        number = int(value)
    elif type(value) is int:
        number = value
    else:
        raise ValueError(f"{name} must be a whole number (a decimal string or a JSON integer)")
    if not 0 <= number <= maximum:
        raise ValueError(f"{name} must be between 0 and {maximum}")
    return number


def _checksum(address: str) -> str:
    from eth_utils import to_checksum_address

    return to_checksum_address(address)
