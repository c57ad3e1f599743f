"""A thin, fast JSON-RPC driver for the economic state machine.

Ape costs ~50 ms per transaction (gas estimation, receipt decoding, tracing); thousands of
random steps need less. The driver talks to the anvil node Ape started: it sends transactions
from anvil's unlocked dev accounts with a fixed gas limit (so reverting transactions are mined
too, at the block time the test chose), decodes custom errors from a call trace, and reads many
views in one JSON-RPC batch. The ABIs come from Ape's compiled contract types.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Sequence

import requests
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

GAS = 5_000_000


class RpcError(RuntimeError):
    pass


@dataclass(frozen=True)
class Function:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    selector: bytes

    def encode(self, *args: Any) -> bytes:
        return self.selector + abi_encode(list(self.inputs), list(args))

    def decode(self, data: bytes) -> tuple:
        return abi_decode(list(self.outputs), data)


def _canonical(ipt) -> str:
    return ipt.canonical_type


class Abi:
    """Functions and custom errors of one compiled contract (an Ape ContractType)."""

    def __init__(self, contract_type):
        self.functions: dict[str, Function] = {}
        self.errors: dict[bytes, tuple[str, tuple[str, ...], tuple[str, ...]]] = {}
        for item in contract_type.abi:
            kind = getattr(item, "type", None)
            if kind == "function":
                ins = tuple(_canonical(i) for i in item.inputs)
                outs = tuple(_canonical(o) for o in item.outputs)
                sel = keccak(text=f"{item.name}({','.join(ins)})")[:4]
                self.functions[item.name] = Function(item.name, ins, outs, sel)
            elif kind == "error":
                ins = tuple(_canonical(i) for i in item.inputs)
                names = tuple(i.name for i in item.inputs)
                sel = keccak(text=f"{item.name}({','.join(ins)})")[:4]
                self.errors[sel] = (item.name, ins, names)

    def __getitem__(self, name: str) -> Function:
        return self.functions[name]


@dataclass
class Receipt:
    ok: bool
    error: str | None  # custom error name when the transaction reverted
    error_args: dict | None
    logs: list
    block_number: int


class Rpc:
    def __init__(self, uri: str):
        self.uri = uri
        self.session = requests.Session()
        # Local node: no proxies. Without this, requests reads the proxy settings from the
        # environment on every call (about a tenth of the test's Python time).
        self.session.trust_env = False
        # The full-state check reads the same views with the same arguments after every step,
        # and mostly gets the same answers: encodings and decodings are cached.
        self._encoded: dict[tuple, str] = {}
        self._decoded: dict[tuple, tuple] = {}
        self._ids = itertools.count(1)
        self.errors: dict[bytes, tuple[str, tuple[str, ...], tuple[str, ...]]] = {}

    def register_errors(self, abi: Abi) -> None:
        self.errors.update(abi.errors)

    def call_raw(self, method: str, params: list) -> Any:
        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        reply = self.session.post(self.uri, json=payload, timeout=60).json()
        if "error" in reply:
            raise RpcError(f"{method}: {reply['error']}")
        return reply["result"]

    def batch(self, requests_: Sequence[tuple[str, list]]) -> list:
        if not requests_:
            return []
        payload = [
            {"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(requests_)
        ]
        replies = self.session.post(self.uri, json=payload, timeout=60).json()
        replies.sort(key=lambda r: r["id"])
        out = []
        for reply in replies:
            if "error" in reply:
                out.append(RpcError(str(reply["error"])))
            else:
                out.append(reply["result"])
        return out

    # ------------------------------------------------------------ views

    def view_many(self, calls: Sequence[tuple[str, Function, tuple]]) -> list:
        """[(address, function, args)] -> decoded outputs (a tuple each), or RpcError for a revert."""
        raw = self.batch([("eth_call", [{"to": to, "data": self._data(fn, args)}, "latest"]) for to, fn, args in calls])
        out = []
        for (to, fn, args), result in zip(calls, raw):
            if isinstance(result, RpcError):
                out.append(result)
            else:
                key = (fn.outputs, result)
                decoded = self._decoded.get(key)
                if decoded is None:
                    decoded = fn.decode(bytes.fromhex(result[2:]))
                    if len(self._decoded) > 100_000:
                        self._decoded.clear()
                    self._decoded[key] = decoded
                out.append(decoded)
        return out

    def _data(self, fn: Function, args: tuple) -> str:
        key = (fn.selector, args)
        data = self._encoded.get(key)
        if data is None:
            data = "0x" + fn.encode(*args).hex()
            if len(self._encoded) > 100_000:
                self._encoded.clear()
            self._encoded[key] = data
        return data

    def view(self, to: str, fn: Function, *args) -> tuple:
        result = self.view_many([(to, fn, args)])[0]
        if isinstance(result, RpcError):
            raise result
        return result

    # ------------------------------------------------------------ transactions

    def set_next_timestamp(self, timestamp: int) -> None:
        self.call_raw("evm_setNextBlockTimestamp", [hex(timestamp)])

    def send(self, sender: str, to: str, fn: Function, *args, timestamp: int | None = None) -> Receipt:
        """Mines one transaction (at `timestamp`, if given) and reports how it ended."""
        if timestamp is not None:
            self.set_next_timestamp(timestamp)
        tx = {
            "from": sender,
            "to": to,
            "data": "0x" + fn.encode(*args).hex(),
            "gas": hex(GAS),
            "gasPrice": "0x0",
        }
        tx_hash = self.call_raw("eth_sendTransaction", [tx])
        receipt = self.call_raw("eth_getTransactionReceipt", [tx_hash])
        while receipt is None:  # anvil mines right after answering; the receipt follows shortly
            receipt = self.call_raw("eth_getTransactionReceipt", [tx_hash])
        ok = int(receipt["status"], 16) == 1
        error = args_ = None
        if not ok:
            error, args_ = self._revert_of(tx_hash)
        return Receipt(ok, error, args_, receipt["logs"], int(receipt["blockNumber"], 16))

    def _revert_of(self, tx_hash: str) -> tuple[str, dict]:
        trace = self.call_raw("debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])
        data = bytes.fromhex((trace.get("output") or "0x")[2:])
        return self.decode_error(data)

    def decode_error(self, data: bytes) -> tuple[str, dict]:
        if len(data) < 4:
            return ("<empty revert>" if not data else f"<revert 0x{data.hex()}>"), {}
        known = self.errors.get(data[:4])
        if known is None:
            if data[:4] == keccak(text="Panic(uint256)")[:4]:
                return f"Panic(0x{abi_decode(['uint256'], data[4:])[0]:x})", {}
            return f"<error 0x{data[:4].hex()}>", {}
        name, types, names = known
        values = abi_decode(list(types), data[4:])
        return name, {
            n: (to_checksum_address(v) if t == "address" else v) for n, t, v in zip(names, types, values)
        }
