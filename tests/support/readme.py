"""The README's code blocks marked as running against `make up` (`<!-- runs against make up -->`
on the line before the block), and the same text moved to the ports a test's own hub uses."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MARK = "<!-- runs against make up -->"
_BLOCK = re.compile(re.escape(MARK) + r"\n```(\w+)\n(.*?)^```", re.S | re.M)
# `make up`'s ports, as the README writes them.
CHAIN, RELAYER, HUB = "127.0.0.1:8545", "127.0.0.1:8700", "127.0.0.1:8800"


def runnable_blocks(language: str) -> list[str]:
    """The marked blocks of `language` (sh, python), in the README's order."""
    return [body for kind, body in _BLOCK.findall(README.read_text()) if kind == language]


def on_ports(text: str, chain_url: str, relayer_url: str, hub_url: str) -> str:
    """`text` with `make up`'s addresses replaced by those of a hub on other ports."""
    for fixed, url in ((CHAIN, chain_url), (RELAYER, relayer_url), (HUB, hub_url)):
        text = text.replace(fixed, url.removeprefix("http://"))
    return text
