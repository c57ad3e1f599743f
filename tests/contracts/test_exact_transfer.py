"""A token that delivers less than asked (1% burnt per transfer) is refused for credit and bonds."""

from __future__ import annotations

from tests.support.contracts import reverts

AMOUNT = 200 * 10**18


def test_a_fee_on_transfer_token_is_refused_at_deposit(fot_stack, caller):
    fot, _, escrow = fot_stack
    fot.mint(caller, AMOUNT, sender=caller)
    fot.approve(escrow, AMOUNT, sender=caller)
    with reverts(escrow.ExactTransfer_AmountMismatch, expected=AMOUNT, received=AMOUNT - AMOUNT // 100):
        escrow.deposit(AMOUNT, sender=caller)
    with reverts(escrow.ExactTransfer_AmountMismatch, expected=AMOUNT, received=AMOUNT - AMOUNT // 100):
        escrow.depositFor(caller, AMOUNT, sender=caller)
    assert escrow.balanceOf(caller) == 0
    assert fot.balanceOf(escrow) == 0


def test_a_fee_on_transfer_token_is_refused_as_a_relayer_bond(fot_stack, relayer):
    fot, relayers, _ = fot_stack
    fot.mint(relayer, AMOUNT, sender=relayer)
    fot.approve(relayers, AMOUNT, sender=relayer)
    with reverts(relayers.ExactTransfer_AmountMismatch, expected=AMOUNT, received=AMOUNT - AMOUNT // 100):
        relayers.register("http://x", AMOUNT, sender=relayer)
    assert not relayers.isActive(relayer)
    assert fot.balanceOf(relayers) == 0

