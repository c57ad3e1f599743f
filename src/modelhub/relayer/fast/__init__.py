"""Fast calls: the relayer's path for off-chain calls paid with signed receipts
(docs/fast-calls.md), from the request body to the receipts' settlement.

A caller pays this relayer's fast calls out of the credit it *reserved* for this relayer
(InferenceEscrow.reserve): only this relayer can settle receipts against that reservation, and
it comes back to the caller only `withdrawalDelay` after an announcement. So the relayer knows
from the chain alone what it can serve without loss (book.py).

    body.py        the request body and the receipt's digest
    book.py        the money book: reservations, channels, amounts in flight
    chain_view.py  callers, models and announcements, fed by the chain follower
    calls.py       the HTTP handlers' logic: checks, model run, durable receipt, attestation
    channels.py    the receipts on disk (SQLite, group commit)
    settlement.py  when receipts are settled, and what a settlement changes
"""
