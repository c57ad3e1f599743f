"""A model's card for the hub: its description (the card its metadata URI names), its input and
output tensors read from the ONNX file of its latest version, an example input, and the calls.

The file comes from the hub's model store (`--store`), fetched from relayers (`--fetch-from`)
when missing there and checked against the digest on chain; a card file is read only from the
folder given with `--cards`, so an on-chain URI cannot make the hub read anything else.
"""

from __future__ import annotations

import json
import shlex
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from markdown_it import MarkdownIt

from ..errors import ModelFileUnavailableError, ModelHubError
from ..fetch import Limits, Source, fetch_first, fetch_into
from ..store import ModelStore, digest_to_cid

TOKEN_DECIMALS = 18  # the hub's fee token, tOPG, on dev networks; amounts are shown in its units
CARD_SUFFIXES = (".md", ".txt")
MAX_CARD_BYTES = 256 * 1024
RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class Tensor:
    """One input or output as the ONNX file declares it."""

    name: str
    type: str  # onnxruntime's type text: tensor(float), seq(map(int64,tensor(float)))...
    shape: list[int | str | None] | None  # None: any rank; a str or None dimension: any size


@dataclass
class ModelCard:
    model_id: int
    cid: str
    digest: str
    card_uri: str
    file_problem: str | None = None  # why the tensors are missing, when they are
    card_problem: str | None = None  # why the description is missing, when it is
    inputs: list[Tensor] = field(default_factory=list)
    outputs: list[Tensor] = field(default_factory=list)
    description_html: str | None = None  # the card rendered (raw HTML in it escaped)
    example: dict[str, Any] | None = None
    example_source: str | None = None  # "card" (its own example) or "inputs" (made from the specs)
    cli: str = ""
    cli_fast: str = ""
    sdk: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class Cards:
    """Builds model cards; the tensors of each file and each card's text are read once."""

    def __init__(self, store: ModelStore | None = None, fetch_from: tuple[str, ...] = (),
                 cards_root: Path | None = None, chain_url: str | None = None) -> None:
        self.store = store
        self.fetch_from = tuple(Source.parse(url) for url in fetch_from)
        self.cards_root = cards_root.resolve() if cards_root else None
        self.chain_url = chain_url
        self._tensors: dict[str, tuple[float, Any]] = {}  # digest -> (when read, tensors or the problem)
        self._texts: dict[str, tuple[str | None, str | None]] = {}
        self._lock = threading.Lock()
        self._markdown = MarkdownIt("commonmark", {"html": False}).enable("table")

    def card(self, page: dict[str, Any]) -> ModelCard:
        """The card of the model `page` (signals.model_page) describes, at its latest version."""
        model = page["model"]
        digest = next((v["digest"] for v in page["versions"] if v["version"] == model["latest_version"]), "")
        card = ModelCard(model_id=model["model_id"], digest=digest, cid=_cid(digest), card_uri=model["metadata_uri"])
        found = self._tensors_of(digest)
        specs: list[Any] = []
        if isinstance(found, str):
            card.file_problem = found
        else:
            card.inputs, card.outputs, specs = found
        text, card.card_problem = self.card_text(card.card_uri)
        if text is not None:
            card.description_html = self._markdown.render(text)
        card.example, card.example_source = example_input(text, specs)
        self._calls(card, int(model["price"]))
        return card

    # ------------------------------------------------------------ the ONNX file

    def _tensors_of(self, digest: str) -> tuple[list[Tensor], list[Tensor], list[Any]] | str:
        """The file's tensors, or why they are not at hand; a failure is asked again after
        RETRY_SECONDS (the file may reach the store meanwhile)."""
        with self._lock:
            known = self._tensors.get(digest)
        if known is not None and (not isinstance(known[1], str) or time.monotonic() - known[0] < RETRY_SECONDS):
            return known[1]
        found = self._read_tensors(digest)
        with self._lock:
            self._tensors[digest] = (time.monotonic(), found)
        return found

    def _read_tensors(self, digest: str) -> tuple[list[Tensor], list[Tensor], list[Any]] | str:
        from ..runtime import ModelRuntime

        cid = _cid(digest)
        if self.store is None:
            return ("this hub has no model store (start it with --store DIR, e.g. a relayer's store/artifacts), "
                    f"so the file {cid} is not at hand")
        raw = bytes.fromhex(digest.removeprefix("0x"))
        if not self.store.has(cid):
            problem = self._fetch(cid, raw)
            if problem:
                return problem
        try:
            loaded = ModelRuntime(max_sessions=1, store=self.store).model(raw)
        except ModelHubError as error:
            return f"the model file {cid} cannot be read: {error}"
        inputs, outputs = tensors(loaded)
        return inputs, outputs, list(loaded.inputs)

    def _fetch(self, cid: str, digest: bytes) -> str | None:
        """Copies the file from the first relayer that has it into the store (only if it hashes to
        `digest`); None on success."""
        limits = Limits(self.store.max_size, read_timeout=10.0, total_timeout=60.0)
        try:
            fetch_first(self.fetch_from, digest, lambda source: fetch_into(self.store, source, digest, limits))
        except ModelFileUnavailableError as error:
            where = f"; {error}" if self.fetch_from else ""
            return f"the model file {cid} is not in this hub's model store ({self.store.root}){where}"
        return None

    # ------------------------------------------------------------ the card's text

    def card_text(self, uri: str) -> tuple[str | None, str | None]:
        """(the card's text, or why it is not shown): read once per URI."""
        with self._lock:
            if uri in self._texts:
                return self._texts[uri]
        found = self._read_text(uri)
        with self._lock:
            self._texts[uri] = found
        return found

    def _read_text(self, uri: str) -> tuple[str | None, str | None]:
        if not uri:
            return None, "the model has no card (its metadata URI is empty)"
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            return None, f"the card is at {uri}; this hub shows only cards it holds (file:// URIs under --cards)"
        if self.cards_root is None:
            return None, f"the card is the file {uri}; start the hub with --cards DIR to show cards from DIR"
        relative = (parsed.netloc + parsed.path).lstrip("/")
        path = (self.cards_root / relative).resolve()
        if not path.is_relative_to(self.cards_root) or path.suffix.lower() not in CARD_SUFFIXES:
            return None, f"the card {uri} is not a .md or .txt file inside the hub's card folder"
        try:
            data = path.read_bytes()[:MAX_CARD_BYTES]
        except OSError:
            return None, f"the card {uri} is not in the hub's card folder ({self.cards_root})"
        return data.decode("utf-8", errors="replace"), None

    # ------------------------------------------------------------ the calls

    def _calls(self, card: ModelCard, price: int) -> None:
        example = json.dumps(card.example if card.example is not None else {}, separators=(", ", ": "))
        network = f" --network {shlex.quote(self.chain_url)}" if self.chain_url else ""
        model = card.model_id
        card.cli = f"modelhub infer {model} {shlex.quote(example)} --max-price {price}wei{network}"
        card.cli_fast = f"modelhub infer {model} --input {shlex.quote(example)} --fast --repeat 10{network}"
        chain = self.chain_url or "http://127.0.0.1:8545"
        card.sdk = "\n".join([
            "from ape import accounts, networks",
            "from modelhub.hub import Hub",
            "",
            f"with networks.parse_network_choice({chain!r}):",
            '    hub = Hub.connect(accounts.load("YOUR_ALIAS"))  # an account with credit: hub.deposit(...)',
            f"    request = hub.request({model}, {example}, max_price={price})",
            "    hub.wait_for_request(request.id)",
            "    print(hub.fetch_output(request.id).output)  # checked against the chain",
        ])


def _cid(digest: str) -> str:
    try:
        return digest_to_cid(bytes.fromhex(digest.removeprefix("0x")))
    except (ValueError, ModelHubError):
        return f"(not a sha-256 digest: {digest})"


def tensors(loaded: Any) -> tuple[list[Tensor], list[Tensor]]:
    """The inputs and outputs a loaded model (runtime.LoadedModel) declares."""
    session = loaded.session
    inputs = [Tensor(a.name, a.type, _shape(a.shape, spec.shape is None))
              for a, spec in zip(session.get_inputs(), loaded.inputs)]
    outputs = [Tensor(a.name, a.type, _shape(a.shape, False)) for a in session.get_outputs()]
    return inputs, outputs


def _shape(dims: Any, unranked: bool) -> list[int | str | None] | None:
    if unranked or dims is None:
        return None
    return [d if isinstance(d, int | str) else None for d in dims]


def example_input(text: str | None, specs: list[Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The card's own example (its first JSON block naming exactly the model's inputs), else
    one made from the input specs (every symbolic size 1, zeros)."""
    names = {spec.name for spec in specs}
    for block in _json_blocks(text or ""):
        if isinstance(block, dict) and block and (not names or set(block) == names):
            return block, "card"
    if not specs:
        return None, None
    return {spec.name: _zeros(spec) for spec in specs}, "inputs"


def _json_blocks(text: str) -> list[Any]:
    """The values of the ```json fenced blocks of a markdown text, in order."""
    found, lines, fence = [], [], None  # fence: the open block's info string
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("```"):
            lines.append(line)
        elif fence is None:
            fence, lines = stripped[3:].strip().lower(), []
        else:
            if fence == "json":
                try:
                    found.append(json.loads("\n".join(lines)))
                except ValueError:
                    pass
            fence = None
    return found


def _zeros(spec: Any) -> Any:
    zero: Any = False if spec.dtype.kind == "b" else (0.0 if spec.dtype.kind == "f" else 0)
    value = zero
    for size in reversed(spec.shape if spec.shape is not None else [1]):
        value = [value] * (size if isinstance(size, int) and size > 0 else 1)
    return value
