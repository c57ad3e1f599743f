"""A replay of what the economic state machine found at the edge of the 160-bit amounts: one
receipt may pay up to 2**160 - 1, so a model's `modelStats` revenue passes 2**160 after two such
settlements. It used to be a packed 160-bit counter whose checked overflow then reverted every
batch holding a receipt of that model (and `fulfill` of its on-chain calls): settlement of the
model was stuck. The counters are full words now, and keep counting.

Reachable only with a token supply near 2**159 base units: the dev chains' open-mint HubToken.
"""

from __future__ import annotations

from tests.support.cast import DEV_KEYS
from .signing import Receipt, Signer

MAX_CREDIT = 2**160 - 1


def test_a_models_revenue_keeps_counting_past_2_to_the_160(
    chain, accounts, escrow, token, create_model, fund, bond, relayer
):
    model = create_model(price=0)
    bond(relayer)
    whales = [accounts[5], accounts[6]]
    signers = {s.address: s for s in map(Signer, DEV_KEYS)}
    deadline = chain.pending_timestamp + 3_600

    def signed(account, amount):
        receipt = Receipt(account.address, relayer.address, model, 1, amount, deadline)
        return receipt.as_tuple(), signers[account.address].sign_receipt(receipt, chain.chain_id, escrow.address)

    first, second = (MAX_CREDIT - 1, 2)  # together one above 2**160 - 1
    for whale, amount in zip(whales, (first, second)):
        fund(whale, amount)
        escrow.reserve(relayer, amount, sender=whale)  # receipts are paid from a reservation for the relayer
    receipt, signature = signed(whales[0], first)
    escrow.settleReceipts([receipt], [signature], sender=relayer)
    assert escrow.modelStats(model) == (1, first)

    receipt, signature = signed(whales[1], second)
    tx = escrow.settleReceipts([receipt], [signature], sender=relayer)
    assert len(tx.events.filter(escrow.ReceiptSettled)) == 1
    assert escrow.modelStats(model) == (2, first + second)
    assert escrow.channel(whales[1], relayer, model) == (1, second)
    assert escrow.reservation(whales[1], relayer)[0] == 0
