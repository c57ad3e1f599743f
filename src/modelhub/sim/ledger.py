"""The simulator's money, by the contracts' rules, in memory: credit, reservations, receipts
settled per channel and split by `modelhub.feesplit.split`, earnings, bonds, and price notices.

The fast mode runs on this ledger alone; the chain mode (chain.py) does every operation on the
deployed contracts as well and checks that they agree. Amounts are exact integers (base units).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..feesplit import split
from ..errors import ModelHubError
from .scenario import Protocol

MIN_RECEIPT_PRICE = 1  # InferenceEscrow.MIN_RECEIPT_PRICE: every receipt call pays at least this


class ConservationError(ModelHubError):
    """Tokens appeared or vanished: the ledger's totals no longer add up to what was minted."""


def zeros(n: int) -> np.ndarray:
    """`n` exact integer zeros (Python ints: amounts of 18-decimal tokens overflow int64)."""
    out = np.empty(n, dtype=object)
    out.fill(0)
    return out


def _grown(array: np.ndarray, size: int, fill: object) -> np.ndarray:
    grown = np.empty((size,) + array.shape[1:], dtype=array.dtype)
    grown[: len(array)] = array
    grown[len(array):] = fill
    return grown


@dataclass
class Settlement:
    """The channels (caller, model; the caller's relayer) one settlement paid, and the parts."""

    callers: np.ndarray
    models: np.ndarray
    relayers: np.ndarray
    calls: np.ndarray  # calls each channel added since its last settlement
    paid: np.ndarray  # what each channel paid (exact)
    relayer_parts: np.ndarray
    payee_parts: list[np.ndarray]  # one array per payee, in payee order
    treasury_part: int

    def __len__(self) -> int:
        return len(self.callers)


class Ledger:
    """Everyone's tokens: callers (wallet, free credit, one reservation for their relayer),
    payees of each model (the uploader first, then co-authors), relayers, the treasury."""

    def __init__(self, protocol: Protocol, models: int, relayers: int, payee_shares: list[int]) -> None:
        self.protocol_bps = protocol.protocol_fee_bps
        self.relayer_bps = protocol.relayer_fee_bps
        self.notice_period = protocol.price_notice_period
        self.withdrawal_delay = protocol.withdrawal_delay
        self.shares = list(payee_shares)
        self.minted = 0
        # The registry, as receipts see it: price, and the floor of the last rise with its end.
        self.price = zeros(models)
        self.notice_floor = zeros(models)
        self.notice_ends = np.zeros(models, dtype=np.int64)
        self.registered = np.zeros(models, dtype=bool)
        self.model_calls = np.zeros(models, dtype=np.int64)
        self.model_revenue = zeros(models)
        self.payee_wallet = np.stack([zeros(models) for _ in self.shares], axis=1)
        self.payee_earnings = np.stack([zeros(models) for _ in self.shares], axis=1)
        self.relayer_wallet = zeros(relayers)
        self.relayer_earnings = zeros(relayers)
        self.relayer_bond = zeros(relayers)
        self.treasury_wallet = 0
        self.treasury_earnings = 0
        self.callers = 0
        self.caller_relayer = np.zeros(0, dtype=np.int64)
        self.caller_wallet = zeros(0)
        self.caller_credit = zeros(0)
        self.caller_reserved = zeros(0)
        self.caller_unsettled = zeros(0)
        self.caller_releasing = zeros(0)
        self.caller_release_at = np.zeros(0, dtype=np.int64)  # 0: no release announced
        self._pending: list[tuple[np.ndarray, ...]] = []
        self.paid_total = 0

    # ------------------------------------------------------------------ the registry

    def register_model(self, model: int, price: int, time: int) -> None:
        self.registered[model] = True
        self.price[model] = price

    def receipt_price(self, model: int, time: int) -> int:
        """ModelRegistry's receipt price: the floor while a rise is under notice, else the price."""
        if time < self.notice_ends[model] and self.notice_floor[model] < self.price[model]:
            return self.notice_floor[model]
        return self.price[model]

    def set_price(self, model: int, price: int, time: int) -> None:
        """setPrice: a rise above the receipt price in force starts a notice with that floor."""
        floor = self.receipt_price(model, time)
        if price > floor:
            self.notice_floor[model] = floor
            self.notice_ends[model] = time + self.notice_period
        self.price[model] = price

    def deactivate(self, model: int, time: int) -> None:
        """setActive(false): no new calls; nothing about money changes."""

    def call_prices(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For calls spread evenly over [start, end): each model's receipt price under notice,
        the share of that time still under notice, and the receipt price after it; at least
        MIN_RECEIPT_PRICE each."""
        noticed = (self.notice_floor < self.price) & (self.notice_ends > start)
        share = np.where(noticed, np.clip((self.notice_ends - start) / (end - start), 0.0, 1.0), 0.0)
        during = np.maximum(np.where(noticed, self.notice_floor, self.price), MIN_RECEIPT_PRICE)
        after = np.maximum(self.price, MIN_RECEIPT_PRICE)
        return during, share, after

    # ------------------------------------------------------------------ relayers and callers

    def bond_relayer(self, relayer: int, bond: int, time: int) -> None:
        """Mints the bond to the relayer's wallet and registers it (the bond moves to the registry)."""
        self.minted += bond
        self.relayer_bond[relayer] += bond

    def add_callers(self, relayers: np.ndarray) -> None:
        """New callers, each with the relayer it will reserve credit for."""
        count = len(relayers)
        size = self.callers + count
        if size > len(self.caller_relayer):
            capacity = max(size, 2 * len(self.caller_relayer), 64)
            self.caller_relayer = _grown(self.caller_relayer, capacity, -1)
            self.caller_release_at = _grown(self.caller_release_at, capacity, 0)
            for name in ("caller_wallet", "caller_credit", "caller_reserved", "caller_unsettled", "caller_releasing"):
                setattr(self, name, _grown(getattr(self, name), capacity, 0))
        self.caller_relayer[self.callers:size] = relayers
        self.callers = size

    def top_up(self, callers: np.ndarray, amounts: np.ndarray, time: int) -> None:
        """Mints `amounts` to the callers' wallets and moves them into their reservations
        (reserveFor: deposit and reserve in one step)."""
        self.minted += int(amounts.sum())
        self.caller_reserved[callers] += amounts

    def spendable(self, callers: np.ndarray) -> np.ndarray:
        """What each caller's relayer can still count on: reserved minus unsettled receipts."""
        return self.caller_reserved[callers] - self.caller_unsettled[callers]

    def pay(self, callers: np.ndarray, models: np.ndarray, during_calls: np.ndarray, during_price: np.ndarray,
            after_calls: np.ndarray, after_price: np.ndarray, deadline: int) -> np.ndarray:
        """Receipts: each caller makes `during_calls` calls at `during_price` then `after_calls`
        at `after_price` on its channel to `models`; returns what each owes. Unsettled until
        `settle`; the relayer accepts them only within the caller's spendable reservation."""
        owed = during_calls.astype(object) * during_price + after_calls.astype(object) * after_price
        if np.any(owed > self.spendable(callers)):
            raise ConservationError("a caller signed receipts beyond its reservation")
        np.add.at(self.caller_unsettled, callers, owed)
        self._pending.append((callers, models, during_calls + after_calls, owed))
        return owed

    def settle(self, only: np.ndarray | None, time: int) -> Settlement:
        """settleReceipts by every relayer for the channels of callers where `only` is true (all
        when None): each channel pays its increase out of the reservation, split by feesplit."""
        pending = self._take_pending(only)
        callers, models, calls, paid = pending
        relayers = self.caller_relayer[callers]
        treasury_parts, relayer_parts, payee_parts = split(paid, self.protocol_bps, self.relayer_bps, self.shares)
        treasury_part = int(np.sum(treasury_parts)) if len(paid) else 0
        self.treasury_earnings += treasury_part
        np.add.at(self.relayer_earnings, relayers, relayer_parts)
        for index, parts in enumerate(payee_parts):
            np.add.at(self.payee_earnings[:, index], models, parts)  # a view: adds in place
        np.subtract.at(self.caller_reserved, callers, paid)
        np.subtract.at(self.caller_unsettled, callers, paid)
        np.add.at(self.model_calls, models, calls)
        np.add.at(self.model_revenue, models, paid)
        self.paid_total += int(np.sum(paid)) if len(paid) else 0
        empty = np.zeros(0, dtype=object)
        return Settlement(callers, models, relayers, calls, paid,
                          relayer_parts if len(paid) else empty,
                          [parts if len(paid) else empty for parts in payee_parts], treasury_part)

    def _take_pending(self, only: np.ndarray | None) -> tuple[np.ndarray, ...]:
        """The channels to settle, one row per (caller, model) with its totals summed; the rest
        stays pending."""
        if not self._pending:
            return (np.zeros(0, dtype=np.int64),) * 3 + (zeros(0),)
        callers, models, calls, owed = (np.concatenate(column) for column in zip(*self._pending))
        chosen = np.ones(len(callers), dtype=bool) if only is None else only[callers]
        self._pending = [] if chosen.all() else [tuple(column[~chosen] for column in (callers, models, calls, owed))]
        callers, models, calls, owed = callers[chosen], models[chosen], calls[chosen], owed[chosen]
        keys = callers * len(self.price) + models
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        if len(unique) == len(keys):
            order = np.argsort(keys, kind="stable")
            return callers[order], models[order], calls[order], owed[order]
        summed_calls = np.zeros(len(unique), dtype=np.int64)
        np.add.at(summed_calls, inverse, calls)
        summed_owed = zeros(len(unique))
        np.add.at(summed_owed, inverse, owed)
        return callers[first], models[first], summed_calls, summed_owed

    def announce_release(self, callers: np.ndarray, time: int) -> None:
        """announceRelease of each caller's whole reservation (it is leaving)."""
        self.caller_releasing[callers] = self.caller_reserved[callers]
        self.caller_release_at[callers] = time + self.withdrawal_delay

    def release_due(self, time: int, margin: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """release, then withdraw, for every announced release due `margin` seconds ago: the
        reservation back to free credit and the credit to the wallet. Returns those callers,
        what each release moved and what each withdrawal took out."""
        due = np.flatnonzero((self.caller_release_at[: self.callers] > 0)
                             & (self.caller_release_at[: self.callers] + margin <= time))
        released = np.minimum(self.caller_releasing[due], self.caller_reserved[due])
        self.caller_reserved[due] -= released
        self.caller_releasing[due] = 0
        self.caller_release_at[due] = 0
        withdrawn = self.caller_credit[due] + released
        self.caller_wallet[due] += withdrawn
        self.caller_credit[due] = 0
        return due, released, withdrawn

    def withdraw_earnings(self, payees: np.ndarray, relayers: np.ndarray, treasury: bool, time: int) -> None:
        """withdrawEarnings by the payees of `payees` (models), by `relayers` and the treasury,
        each only if it has earnings (the contract refuses an empty withdrawal)."""
        self.payee_wallet[payees] += self.payee_earnings[payees]
        self.payee_earnings[payees] = 0
        self.relayer_wallet[relayers] += self.relayer_earnings[relayers]
        self.relayer_earnings[relayers] = 0
        if treasury:
            self.treasury_wallet += self.treasury_earnings
            self.treasury_earnings = 0

    # ------------------------------------------------------------------ totals

    def balances(self, models: np.ndarray, relayers: np.ndarray) -> dict:
        """Every balance of the run, exact: the registered `models` in registration order, the
        bonded `relayers` in bonding order, callers in arrival order."""
        n = self.callers
        return {
            "minted": self.minted,
            "treasury": {"wallet": self.treasury_wallet, "earnings": self.treasury_earnings},
            "callers": {"wallet": _ints(self.caller_wallet[:n]), "credit": _ints(self.caller_credit[:n]),
                        "reserved": _ints(self.caller_reserved[:n])},
            "payees": {"wallet": [_ints(row) for row in self.payee_wallet[models]],
                       "earnings": [_ints(row) for row in self.payee_earnings[models]]},
            "relayers": {"wallet": _ints(self.relayer_wallet[relayers]), "earnings": _ints(self.relayer_earnings[relayers]),
                         "bond": _ints(self.relayer_bond[relayers])},
            "models": {"calls": _ints(self.model_calls[models]), "revenue": _ints(self.model_revenue[models])},
        }

    def totals(self) -> dict[str, int]:
        """Where the minted tokens are: wallets, free credit, reservations, earnings, bonds."""
        n = self.callers
        return {
            "wallets": int(self.caller_wallet[:n].sum()) + int(self.payee_wallet.sum()) + int(self.relayer_wallet.sum())
            + self.treasury_wallet,
            "credit": int(self.caller_credit[:n].sum()),
            "reserved": int(self.caller_reserved[:n].sum()),
            "earnings": int(self.payee_earnings.sum()) + int(self.relayer_earnings.sum()) + self.treasury_earnings,
            "bonds": int(self.relayer_bond.sum()),
        }

    def check_conservation(self) -> dict[str, int]:
        """Raises ConservationError unless tokens minted = wallets + credit + reservations +
        earnings + bonds, and everything paid by receipts was earned by somebody; the totals."""
        totals = self.totals()
        held = sum(totals.values())
        if held != self.minted:
            raise ConservationError(f"minted {self.minted} but the balances hold {held}: {totals}")
        earned = (int(self.payee_earnings.sum()) + int(self.payee_wallet.sum()) + int(self.relayer_earnings.sum())
                  + int(self.relayer_wallet.sum()) + self.treasury_earnings + self.treasury_wallet)
        if earned != self.paid_total:
            raise ConservationError(f"receipts paid {self.paid_total} but {earned} was earned")
        return totals


def _ints(values: np.ndarray) -> list[int]:
    return [int(value) for value in values]
