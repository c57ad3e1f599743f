"""The relayer's settings, defined once: each `RelayerConfig` field carries its default, option,
environment variable and help; `click_options` makes `modelhub relayer run`'s options from them.

A setting with an environment variable has no default on the command line: the option, when
given, wins; otherwise the variable, read when the config is made (by the CLI or by code that
embeds the relayer); otherwise the default. Imports nothing heavy (the CLI builds its options
from here at start-up).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import click


@dataclass(frozen=True)
class Setting:
    """How one setting is given: `option` on the command line (None: none, code only), of
    click type `kind`; `env`: the environment variable behind its default; `help` says what it does."""

    help: str
    option: str | None = None
    kind: Any = None
    env: str | None = None
    show_default: bool = True
    multiple: bool = False
    metavar: str | None = None


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def setting(default: Any, help: str, option: str | None = None, kind: Any = None, env: str | None = None,
            **how: Any) -> Any:
    """A RelayerConfig field: `default` (a callable: its factory), and how it is given."""
    meta = {"setting": Setting(help, option, kind, env, **how)}
    if env is not None:
        fallback = default if callable(default) else (lambda: default)
        return field(default_factory=lambda: _env_int(env, fallback()), metadata=meta)
    if callable(default):
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


def _default_upload_limit() -> int:
    from ..store import DEFAULT_MAX_SIZE  # the store's own limit (not imported with the CLI)

    return DEFAULT_MAX_SIZE


_FAST = "Fast calls: "


@dataclass
class RelayerConfig:
    """How the relayer behaves; `modelhub relayer run` has an option for each field that names one."""

    host: str = setting("127.0.0.1", "Address the HTTP API listens on.", "--host")
    port: int = setting(8700, "Port of the HTTP API (0: any free port).", "--port", click.IntRange(0, 65535))
    store_dir: Path = setting(Path("var/relayer"), "Folder for model files and the relayer's state (one per "
                              "deployment).", "--store", click.Path(file_okay=False, path_type=Path))
    confirmations: int = setting(0, "Follow the chain this many blocks behind its head (0 on dev chains; a few on "
                                 "public ones).", "--confirmations", click.IntRange(0))
    batch_size: int = setting(100, "Attestations settled per fulfillBatch transaction, at most.", "--batch-size",
                              click.IntRange(1, 500))
    poll_interval: float = setting(0.5, "Seconds between polls of the chain when idle.", "--poll-interval",
                                   click.FloatRange(0))
    fetch_from: list[str] = setting(list, "Where to fetch model files this relayer lacks, besides the other "
                                    "registered relayers (repeatable): a relayer's URL, or a URL with {cid} such as "
                                    "an IPFS gateway's https://GATEWAY/ipfs/{cid}. Every file is checked against "
                                    "its digest on chain.", "--fetch-from", multiple=True, metavar="URL",
                                    show_default=False)
    file_wait: float = setting(60.0, "Seconds a call designated to this relayer waits for a model file it lacks "
                               "while the file is fetched, before it is rejected (reason 3) and refunded; open "
                               "calls are never rejected, only left to other relayers.", "--file-wait",
                               click.FloatRange(0))
    fetch_timeout: float = setting(300.0, "Seconds one download of a model file from one source may take in all "
                                   "before the next source is asked.", "--fetch-timeout", click.FloatRange(1))
    max_input_bytes: int = setting(64 * 1024, "Larger inputs are rejected (reason 1) without being run.",
                                   "--max-input-bytes", click.IntRange(1))
    inference_time_limit: float = setting(10.0, "Seconds a model may run on one call before the call is rejected "
                                          "(reason 2).", "--time-limit", click.FloatRange(0.001))
    # Fast calls (docs/fast-calls.md): when the receipts the relayer holds are settled.
    settle_threshold: int = setting(10**18, _FAST + "settle a channel as soon as its unsettled receipts reach this "
                                    "many token base units.", "--settle-threshold", click.IntRange(0))
    settle_interval: float = setting(60.0, _FAST + "every this many seconds, settle every channel holding an "
                                     "unsettled receipt.", "--settle-interval", click.FloatRange(0.1))
    min_receipt_lifetime: int = setting(
        600, _FAST + "refuse receipts whose deadline is sooner than this many seconds from now (deadline_too_soon); "
        "a channel is settled when its receipt has half of this left, and receipts pay the new price within half "
        "of this before a price notice ends.", "--min-receipt-lifetime", click.IntRange(2))
    settle_batch_size: int = setting(100, _FAST + "receipts per settleReceipts transaction, at most.",
                                     "--settle-batch-size", click.IntRange(1, 500))
    chain_refresh_interval: float = setting(
        2.0, _FAST + "seconds between re-reads of known callers' credit and models' prices (the window in which "
        "credit spent elsewhere is not seen; withdrawals are announced and seen at once).",
        "--chain-refresh-interval", click.FloatRange(0.1))
    # Below it a settlement costs more gas than it brings.
    min_settle_amount: int = setting(
        10**15, _FAST + "settle a channel by threshold or interval only once its unsettled receipts are worth this "
        "many token base units (default 10**15, or $MODELHUB_RELAYER_MIN_SETTLE_AMOUNT); deadlines, releases, "
        "notices and shutdown settle it whatever it is worth.", "--min-settle-amount", click.IntRange(0),
        env="MODELHUB_RELAYER_MIN_SETTLE_AMOUNT")
    max_receipt_lifetime: int = setting(
        2 * 86_400, _FAST + "refuse receipts whose deadline is further than this many seconds away "
        "(deadline_too_far; default 2 days, or $MODELHUB_RELAYER_MAX_RECEIPT_LIFETIME).", "--max-receipt-lifetime",
        click.IntRange(1), env="MODELHUB_RELAYER_MAX_RECEIPT_LIFETIME")
    max_upload_bytes: int = setting(
        _default_upload_limit, "Model files larger than this are refused at upload (default: "
        "$MODELHUB_RELAYER_MAX_UPLOAD_BYTES).", "--max-upload-bytes", click.IntRange(1),
        env="MODELHUB_RELAYER_MAX_UPLOAD_BYTES")
    max_callers: int = setting(
        200_000, _FAST + "callers followed in memory at most (default 200,000, or $MODELHUB_RELAYER_MAX_CALLERS).",
        "--max-callers", click.IntRange(1), env="MODELHUB_RELAYER_MAX_CALLERS")
    log_level: str = setting("info", "How much the relayer logs, on stderr.", "--log-level",
                             click.Choice(["debug", "info", "warning", "error"]))
    # Without an option: for tests and code that embeds the relayer.
    max_scan_blocks: int = setting(2_000, "Blocks read per event query.")
    min_backoff: float = setting(0.5, "Seconds of the first wait after a failed round; doubles up to max_backoff.")
    max_backoff: float = setting(30.0, "Longest wait between failed rounds, in seconds.")
    max_in_flight: int = setting(1_024, _FAST + "calls served at once at most; more are refused (busy).")
    fetch_read_timeout: float = setting(30.0, "Seconds of silence from a source before its download is dropped.")
    fetch_min_retry: float = setting(2.0, "Seconds before a model file no source served is asked for again; "
                                     "doubles each round up to fetch_max_retry.")
    fetch_max_retry: float = setting(60.0, "Longest wait between two rounds of fetching a missing model file.")
    jury_actions_per_round: int = setting(
        4, "Jury duty per round, after the calls are served, at most: verdicts (a model run each) and dispute "
        "transactions (draws, commits, reveals, resolutions, claims); the rest wait for the next rounds.")

    @classmethod
    def from_options(cls, **given: Any) -> "RelayerConfig":
        """The config from `click_options`' parameters: an option not given (None) leaves the
        setting to its environment variable or default."""
        values = {name: value for name, value in given.items() if value is not None}
        if "fetch_from" in values:
            values["fetch_from"] = list(values["fetch_from"])
        config = cls(**values)
        config.file_sources()  # a malformed --fetch-from is refused before the relayer starts
        return config

    def file_sources(self) -> list:
        """The --fetch-from sources (modelhub.fetch.Source); click.BadParameter for a malformed one."""
        from ..fetch import Source

        try:
            return [Source.parse(text) for text in self.fetch_from]
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--fetch-from") from None


def settings() -> list[tuple[str, Setting, Any]]:
    """(field name, how it is given, its default or default factory) of every setting, in order."""
    found = []
    for item in fields(RelayerConfig):
        default = item.default if item.default is not MISSING else item.default_factory
        found.append((item.name, item.metadata["setting"], default))
    return found


def click_options(command: Callable) -> Callable:
    """Decorates a click command with an option per setting that names one, in field order;
    each option's parameter is the field's name (see RelayerConfig.from_options)."""
    for name, how, default in reversed(settings()):
        if how.option is None:
            continue
        extra: dict[str, Any] = {}
        if how.help:
            extra["help"] = how.help
        if how.multiple:
            extra.update(multiple=True, metavar=how.metavar)
        elif how.env is not None:
            extra.update(type=how.kind, default=None)  # the environment variable, read by RelayerConfig
        else:
            extra.update(type=how.kind, default=default, show_default=how.show_default)
        command = click.option(how.option, name, **extra)(command)
    return command
