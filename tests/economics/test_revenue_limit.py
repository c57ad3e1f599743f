"""A replay of what the economic state machine found at the edge of the 160-bit amounts (see
`ref.MAX_REVENUE`): a model's `modelStats` revenue is a checked 160-bit counter, while one
receipt may pay up to 2**160 - 1. Two settlements of credit near that limit to the same model
overflow it, and from then on every batch holding a settleable receipt of that model reverts as a
whole (Panic 0x11), valid items of other channels included, and so does `fulfill` of its on-chain
calls. Nothing is paid twice and nothing is lost (the transaction reverts), but the model's
settlement is stuck.

This pins the behaviour the state machine's model expects today; it reaches it only with a token
supply near 2**159 base units (the dev chains' open-mint HubToken, not a real token).
"""

from __future__ import annotations

import pytest
from ape.exceptions import VirtualMachineError
from cast_support import DEV_KEYS

from modelhub.receipts import FastSigner, Receipt

MAX_CREDIT = 2**160 - 1


def test_a_models_revenue_overflows_after_two_settlements_near_the_160_bit_limit(
    chain, accounts, escrow, token, create_model, fund, bond, relayer
):
    model = create_model(price=0)
    bond(relayer)
    whales = [accounts[5], accounts[6]]
    signers = {s.address: s for s in map(FastSigner, DEV_KEYS)}
    deadline = chain.pending_timestamp + 3_600

    def signed(account, amount):
        receipt = Receipt(account.address, relayer.address, model, 1, amount, deadline)
        return receipt.as_tuple(), signers[account.address].sign_receipt(receipt, chain.chain_id, escrow.address)

    first, second = (MAX_CREDIT - 1, 2)  # together one above the limit
    fund(whales[0], first)
    fund(whales[1], second)
    receipt, signature = signed(whales[0], first)
    escrow.settleReceipts([receipt], [signature], sender=relayer)
    assert escrow.modelStats(model) == (1, first)

    receipt, signature = signed(whales[1], second)
    with pytest.raises(VirtualMachineError, match="Panic error 0x11"):  # the whole batch reverts
        escrow.settleReceipts([receipt], [signature], sender=relayer)
    assert escrow.modelStats(model) == (1, first)
    assert escrow.channel(whales[1], relayer, model) == (0, 0)
    assert escrow.balanceOf(whales[1]) == second
