"""The fast path's money book: callers' reservations for this relayer, the receipt channels and
the amounts of calls in flight; what a caller can be served for, checked and held under one lock.

    servable = reserved - releasing (once announced) - unsettled receipts held - calls in flight

The event loop (calls) and the daemon thread (chain reads, settlement) both change the book.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace

from ...refusals import refuse
from .channels import Channel

log = logging.getLogger("modelhub.relayer")


@dataclass(frozen=True)
class CallerView:
    """A caller's reservation for this relayer and its receipt signer key, as last read
    (replaced whole, so a reader never sees half an update)."""

    reserved: int
    releasing: int  # announced to go back to free credit at `release_at` (0: none)
    release_at: int
    signer: bytes | None  # raw 20 bytes of the receipt signer key in force when read (None: none)
    next_signer: bytes | None  # the key that replaces it at `next_at` (None with next_at: removal)
    next_at: int  # 0: no change pending

    def signer_at(self, when: int) -> bytes | None:
        if self.next_at and when >= self.next_at:
            return self.next_signer
        return self.signer

    @property
    def spendable(self) -> int:
        return max(self.reserved - self.releasing, 0)


class ReceiptBook:
    """Callers, channels and amounts in flight. Memory: callers are only accounts that reserved
    credit here, at most `max_callers` (the smallest reservations without open channels go first
    when full); one channel per (caller, model) that paid a receipt here; one in-flight entry
    per caller with a call being served."""

    def __init__(self, channels: Iterable[Channel], max_callers: int) -> None:
        self.lock = threading.Lock()
        self.max_callers = max_callers
        self.callers: dict[str, CallerView] = {}
        self.channels: dict[tuple[str, int], Channel] = {}
        self._by_caller: dict[str, list[Channel]] = {}
        self._in_flight: dict[str, int] = {}  # increases of calls being run, per caller
        for channel in channels:
            self.add_channel(channel)

    # ------------------------------------------------------------------ channels

    def add_channel(self, channel: Channel) -> None:
        self.channels[(channel.caller, channel.model_id)] = channel
        self._by_caller.setdefault(channel.caller, []).append(channel)

    def commit(self, channel: Channel, calls: int, amount: int, deadline: int, signature: bytes) -> None:
        """A receipt stored on disk becomes the channel's newest."""
        with self.lock:
            channel.calls, channel.amount = calls, amount
            channel.deadline, channel.signature = deadline, signature
            if (channel.caller, channel.model_id) not in self.channels:
                self.add_channel(channel)

    def settleable(self) -> list[Channel]:
        """Open channels whose newest receipt the escrow has not refused for good."""
        with self.lock:
            return [channel for channel in self.channels.values()
                    if channel.open and channel.calls > channel.refused_calls]

    def all_channels(self) -> list[Channel]:
        with self.lock:
            return list(self.channels.values())

    def settled(self, channel: Channel, calls: int, amount: int) -> int:
        """The escrow settled the channel to (calls, amount): what it paid is no longer in the
        caller's reservation. Returns what it paid."""
        with self.lock:
            paid = amount - channel.settled_amount
            channel.settled_calls, channel.settled_amount = calls, amount
            view = self.callers.get(channel.caller)
            if view is not None and paid > 0:
                self.callers[channel.caller] = replace(view, reserved=max(view.reserved - paid, 0))
        return paid

    # ------------------------------------------------------------------ credit

    def unsettled(self, caller: str) -> int:
        return sum(max(channel.amount - channel.settled_amount, 0) for channel in self._by_caller.get(caller, ()))

    def available(self, caller: str, view: CallerView) -> int:
        """What `caller` can still be served for (may be negative)."""
        with self.lock:
            return view.spendable - self.unsettled(caller) - self._in_flight.get(caller, 0)

    def hold(self, caller: str, increase: int) -> None:
        """Counts `increase` against the caller's servable credit for the time of the call;
        refuses it (insufficient_credit) when the credit does not cover it."""
        with self.lock:
            view = self.callers.get(caller)
            spendable = view.spendable if view is not None else 0
            in_flight = self._in_flight.get(caller, 0)
            unsettled = self.unsettled(caller)
            available = spendable - unsettled - in_flight
            if increase > available:
                raise refuse("insufficient_credit", f"{caller} has {max(available, 0)} of credit this relayer can "
                             f"count on (reserved here {view.reserved if view else 0}, announced release "
                             f"{view.releasing if view else 0}, unsettled here {unsettled + in_flight}) and this "
                             f"call needs {increase}; reserve more credit with this relayer or wait for settlement",
                             available=str(max(available, 0)), needed=str(increase))
            self._in_flight[caller] = in_flight + increase

    def release(self, caller: str, increase: int) -> None:
        """The call holding `increase` has ended (its receipt committed, or refused)."""
        with self.lock:
            left = self._in_flight[caller] - increase
            if left:
                self._in_flight[caller] = left
            else:
                del self._in_flight[caller]

    def keep_caller(self, caller: str, view: CallerView) -> None:
        """Stores a caller's view within `max_callers`: a caller with nothing reserved and no open
        channel is forgotten; when full, the smallest reservation without open channels goes."""
        with self.lock:
            open_here = any(channel.open for channel in self._by_caller.get(caller, ()))
            if view.reserved == 0 and not open_here:
                self.callers.pop(caller, None)
                return
            if caller not in self.callers and len(self.callers) >= self.max_callers:
                evictable = [(known.reserved, other) for other, known in self.callers.items()
                             if not any(channel.open for channel in self._by_caller.get(other, ()))]
                if not evictable:
                    log.warning("%s reserved credit here, but this relayer already follows %d callers with open "
                                "channels (max_callers); it is not served", caller, len(self.callers))
                    return
                smallest, other = min(evictable)
                if smallest >= view.reserved:
                    log.warning("%s reserved %d here; the %d callers followed (max_callers) all reserved more; "
                                "it is not served", caller, view.reserved, len(self.callers))
                    return
                del self.callers[other]
            self.callers[caller] = view
