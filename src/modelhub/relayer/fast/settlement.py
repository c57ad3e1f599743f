"""When the fast path's receipts are settled (settleReceipts, `settle_batch_size` per
transaction), and what a settlement's outcome changes in the book and on disk.

What stays exposed between settlements, and why it is bounded:
* Nothing of the credit: reservations only shrink by this relayer's own settlements, and an
  announced release is subtracted the moment its event is seen and the caller's channels are
  settled at once (the release waits `withdrawalDelay`).
* A price rise under notice: receipts may pay the notice's floor only while the notice has more
  than `min_receipt_lifetime / 2` to run; channels holding floor-priced receipts are settled
  then (the escrow keeps a channel that last settled under the floor settleable at the floor,
  so a late settlement is not lost either).
* A receipt signer change: receipts signed by the outgoing key are settled before it ends.
* Fee changes and minimum bond rises are announced ahead (FeesEffectiveAt, MinBondEffectiveAt):
  every open channel is settled before they apply.
"""

from __future__ import annotations

import logging
import time
from eth_utils import to_checksum_address

from ...contracts import ReceiptSkipReason
from ...typed_data import Receipt
from ..metrics import RelayerMetrics
from ..settings import RelayerConfig
from .channels import Channel, ChannelStore
from .chain_view import ChainView

log = logging.getLogger("modelhub.relayer")


class Settlement:
    """Settles the receipt channels a trigger names; driven by the daemon's rounds."""

    def __init__(self, view: ChainView, store: ChannelStore, metrics: RelayerMetrics, config: RelayerConfig) -> None:
        self.view, self.hub, self.book = view, view.hub, view.book
        self.store, self.metrics, self.config = store, metrics, config
        self.margin = max(1, config.min_receipt_lifetime // 2)  # settle this long before a deadline or notice end
        self.recovered = False
        self._last_interval = time.monotonic()
        self._notice_settled: dict[int, int] = {}  # model id -> floor_ends_at already settled for
        self._signer_settled: dict[str, int] = {}  # caller -> next_at already settled for
        self._fees_settled_for = 0
        self._min_bond_settled_for = 0
        self._retry_at: dict[tuple[str, int], float] = {}

    def recover(self) -> None:
        """After a (re)start: reads what the escrow settled of the stored open channels (a batch
        may have landed just before a crash) and settles the rest at once."""
        open_channels = [channel for channel in self.book.all_channels() if channel.open]
        for channel in open_channels:
            self._sync_from_chain(channel)
        self.view.read_callers(sorted({channel.caller for channel in open_channels}))
        still_open = [channel for channel in open_channels if channel.open]
        if still_open:
            log.info("recovered %d unsettled receipt channel(s) from %s; settling them", len(still_open),
                     self.store.path)
            self._settle(still_open, "restart")
        self.recovered = True

    def settle_due(self) -> bool:
        """Settles the channels a trigger names. Forced (whatever they are worth): an announced
        release, a deadline near, a price notice ending, a receipt signer key being replaced, a
        fee change or a minimum bond rise about to apply. Otherwise only channels worth at least
        `min_settle_amount`: on the threshold, or every interval. True if it sent a settlement."""
        view, margin = self.view, self.margin
        now = view.now()
        clock = time.monotonic()
        interval_due = clock - self._last_interval >= self.config.settle_interval
        notices = {model_id: model.floor_ends_at for model_id, model in list(view.models.items())
                   if model.floor_price < model.price and model.floor_ends_at
                   and now >= model.floor_ends_at - margin
                   and self._notice_settled.get(model_id) != model.floor_ends_at}
        signer_changes = {caller: known.next_at for caller, known in list(self.book.callers.items())
                          if known.next_at and now >= known.next_at - margin
                          and self._signer_settled.get(caller) != known.next_at}
        everything = None
        fee_change_at = view.fee_change_at
        if fee_change_at > now - margin and now >= fee_change_at - margin and self._fees_settled_for != fee_change_at:
            everything = "fee change"
        new_min, min_at = view.min_bond_change
        if min_at > now - margin and self._min_bond_settled_for != min_at and min_at - margin <= now:
            if self._bond() < new_min:
                everything = "minimum bond rise"
            else:
                self._min_bond_settled_for = min_at
        due: dict[str, list[Channel]] = {}
        unforced_minimum = max(self.config.min_settle_amount, 1)
        for channel in self.book.settleable():
            key = (channel.caller, channel.model_id)
            if self._retry_at.get(key, 0) > clock:
                continue
            known = self.book.callers.get(channel.caller)
            if channel.caller in view.releasing or (known is not None and known.releasing
                                                    and self.book.unsettled(channel.caller) > known.spendable):
                reason = "release announced"
            elif channel.deadline - now <= margin:
                reason = "deadline near"
            elif channel.model_id in notices:
                reason = "price notice ending"
            elif channel.caller in signer_changes:
                reason = "receipt signer change"
            elif everything is not None:
                reason = everything
            elif channel.unsettled < unforced_minimum:
                continue  # not worth the gas yet
            elif channel.unsettled >= self.config.settle_threshold:
                reason = "threshold"
            elif interval_due:
                reason = "interval"
            else:
                continue
            due.setdefault(reason, []).append(channel)
        if interval_due:
            self._last_interval = clock
        for reason, channels in due.items():
            self._settle(channels, reason)
        self._notice_settled.update(notices)
        self._signer_settled.update(signer_changes)
        if everything == "fee change":
            self._fees_settled_for = fee_change_at
        elif everything == "minimum bond rise":
            self._min_bond_settled_for = min_at
        view.releasing.clear()
        return bool(due)

    def settle_all(self, reason: str) -> None:
        """Settles every open channel, whatever it is worth (shutdown)."""
        channels = self.book.settleable()
        if channels:
            self._settle(channels, reason)

    def _bond(self) -> int:
        try:
            return int(self.hub.relayer_info(self.hub.address).bond)
        except Exception as error:  # noqa: BLE001 -- unknown: assume the worst and settle
            log.warning("could not read this relayer's bond (%s); settling before the minimum bond rises", error)
            return 0

    def _settle(self, channels: list[Channel], reason: str) -> None:
        """settleReceipts on the newest receipt of each channel, `settle_batch_size` per transaction."""
        for start in range(0, len(channels), self.config.settle_batch_size):
            chunk = channels[start:start + self.config.settle_batch_size]
            with self.book.lock:  # one consistent receipt per channel, even while calls come in
                items = [(channel, Receipt(to_checksum_address(channel.caller), self.hub.address, channel.model_id,
                                           channel.calls, channel.amount, channel.deadline), channel.signature)
                         for channel in chunk]
            outcomes = self.hub.settle_receipts([(receipt, signature) for _, receipt, signature in items])
            self.metrics.fast_settlement_batches.inc()
            settled_rows = []
            settled_calls = settled_amount = 0
            for (channel, receipt, _), outcome in zip(items, outcomes):
                if outcome.settled:
                    settled_calls += receipt.calls - channel.settled_calls
                    settled_amount += self.book.settled(channel, receipt.calls, receipt.amount)
                    settled_rows.append((channel.caller, channel.model_id, receipt.calls, receipt.amount))
                    self._retry_at.pop((channel.caller, channel.model_id), None)
                else:
                    self._skipped(channel, receipt, outcome.skip_reason)
            self.store.record_settled(settled_rows)
            self.metrics.fast_calls_settled.inc(settled_calls)
            self.metrics.fast_amount_settled.inc(settled_amount)
            log.info("settled %d of %d receipt channel(s) in one transaction (%s): %d call(s), %d base units",
                     len(settled_rows), len(items), reason, settled_calls, settled_amount)
        self.update_gauges()

    def _skipped(self, channel: Channel, receipt: Receipt, reason: ReceiptSkipReason) -> None:
        key = (channel.caller, channel.model_id)
        name = getattr(reason, "name", str(reason))
        self.metrics.fast_receipts_skipped.labels(reason=name.lower()).inc()
        if reason is ReceiptSkipReason.NOT_NEWER:
            # The chain says what is settled (a batch that landed before a crash, say).
            log.info("receipt of %s on model %d (calls=%d) was already settled; reading the channel", channel.caller,
                     channel.model_id, receipt.calls)
            self._sync_from_chain(channel)
        elif reason in (ReceiptSkipReason.NOT_ACTIVE_RELAYER, ReceiptSkipReason.INSUFFICIENT_CREDIT):
            # May change (the relayer bonds again): retried at the next interval.
            self._retry_at[key] = time.monotonic() + self.config.settle_interval
            hint = ("register this relayer with a bond (`modelhub relayer register`)"
                    if reason is ReceiptSkipReason.NOT_ACTIVE_RELAYER
                    else "the caller's reservation here is smaller than this relayer counted")
            log.error("receipt of %s on model %d (calls=%d) skipped: %s; %s; retrying in %gs", channel.caller,
                      channel.model_id, receipt.calls, name, hint, self.config.settle_interval)
            if reason is ReceiptSkipReason.INSUFFICIENT_CREDIT:
                self.view.read_callers([channel.caller])
        else:
            # This receipt can never settle (NotSubmitter cannot happen: the relayer submits only
            # receipts naming itself); a newer receipt of the channel (cumulative) still can.
            channel.refused_calls = receipt.calls
            detail = ""
            if reason is ReceiptSkipReason.UNDERPRICED:
                try:
                    price = self.hub.channel_price(receipt.caller, self.hub.address, channel.model_id)
                    detail = f" (channelPrice now {price})"
                except Exception:  # noqa: BLE001 -- only for the log line
                    pass
            log.error("receipt of %s on model %d (calls=%d) was refused by the escrow: %s%s; waiting for a newer "
                      "receipt of that channel", channel.caller, channel.model_id, receipt.calls, name, detail)

    def _sync_from_chain(self, channel: Channel) -> None:
        calls, amount = self.hub.channel(to_checksum_address(channel.caller), self.hub.address, channel.model_id)
        if calls == channel.settled_calls and amount == channel.settled_amount:
            return
        self.book.settled(channel, calls, amount)
        self.store.record_settled([(channel.caller, channel.model_id, calls, amount)])

    def update_gauges(self) -> None:
        channels = self.book.all_channels()
        self.metrics.fast_unsettled_amount.set(sum(max(c.unsettled, 0) for c in channels))
        self.metrics.fast_open_channels.set(sum(1 for c in channels if c.open))
