"""`modelhub dev ...`: shortcuts that exist only on a local dev chain (anvil), such as moving
its clock past a delay; every one of them refuses any other chain."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import click

from .common import Session, hub_command

_DURATION_PART = re.compile(r"(\d+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}


class DurationType(click.ParamType):
    """A duration: seconds (`3600`), or numbers with units s, m, h, d (`90s`, `1h`, `1h30m`)."""

    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text.isdigit():
            seconds = int(text)
        else:
            parts = _DURATION_PART.findall(text)
            if not parts or "".join(number + unit for number, unit in parts) != text:
                self.fail(f"{value!r} is not a duration: write seconds (3600) or with units "
                          "s, m, h, d (90s, 1h, 1h30m, 2d)", param, ctx)
            seconds = sum(int(number) * _SECONDS[unit] for number, unit in parts)
        if seconds <= 0:
            self.fail(f"{value!r}: the clock only moves forward; give a duration above 0", param, ctx)
        return seconds


@click.group()
def dev() -> None:
    """Local dev chain shortcuts (anvil only; refused on any other chain)."""


@hub_command(dev, "advance-time")
@click.argument("duration", type=DurationType())
def advance_time(session: Session, duration: int) -> None:
    """Move the dev chain's clock forward by DURATION and mine a block, so that delays (a
    reservation's release, a refund deadline, unbonding) pass at once.

    DURATION is seconds (3600) or with units s, m, h, d (90s, 1h, 1h30m, 2d). Refused unless the
    chain is a local dev chain: chain id 31337 or 1337, and a node that answers anvil's methods.
    """
    from ape import chain

    from modelhub.devchain import advance_time as move_clock

    timestamp = move_clock(chain.provider.http_uri, duration)
    when = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    session.emit({"advancedBy": duration, "timestamp": timestamp},
                 f"Moved the chain's clock forward by {duration} s: its latest block is at {when}")
