"""The fee split of Model Hub in Python: the same rounding rule as contracts/libraries/FeeSplit.sol,
for code that must know who earned what without asking the chain (the indexer, the simulator).

Treasury `price * protocolBps // 10_000`, relayer `price * relayerBps // 10_000`, the payees the
rest; within the payees, payee i > 0 gets `payeePart * share_i // 10_000`, the first the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

BPS = 10_000


def split(price: int, protocol_bps: int, relayer_bps: int, shares: Sequence[int]) -> tuple[int, int, list[int]]:
    """(treasury part, relayer part, [payee parts in payee order]) of `price`; they sum to it."""
    protocol_part = price * protocol_bps // BPS
    relayer_part = price * relayer_bps // BPS
    payee_part = price - protocol_part - relayer_part
    others = [payee_part * share // BPS for share in shares[1:]]
    return protocol_part, relayer_part, [payee_part - sum(others), *others]
