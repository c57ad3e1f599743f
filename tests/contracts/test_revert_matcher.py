"""The suite's strict revert matcher itself: it must fail on the wrong error, wrong argument,
or no revert, for transactions and for read-only calls alike (Ape's own `ape.reverts` lets an
undecoded revert pass for any expected custom error)."""

from __future__ import annotations

import pytest

from tests.support.contracts import reverts


def test_the_matcher_accepts_the_right_error_and_arguments(escrow, caller, registry):
    with reverts(escrow.InferenceEscrow_InsufficientCredit, account=caller, credit=0, required=5):
        escrow.withdraw(5, sender=caller)
    with reverts(registry.ModelRegistry_UnknownModel, modelId=7):
        registry.getModel(7)


def test_the_matcher_refuses_another_error_of_a_transaction(escrow, caller):
    with pytest.raises(AssertionError, match="expected InferenceEscrow_ZeroAmount"):
        with reverts(escrow.InferenceEscrow_ZeroAmount):
            escrow.withdraw(5, sender=caller)


def test_the_matcher_refuses_a_wrong_argument(escrow, caller):
    with pytest.raises(AssertionError, match="required"):
        with reverts(escrow.InferenceEscrow_InsufficientCredit, required=6):
            escrow.withdraw(5, sender=caller)


def test_the_matcher_refuses_another_error_of_a_read_only_call(registry):
    with pytest.raises(AssertionError, match="expected ModelRegistry_EmptyName"):
        with reverts(registry.ModelRegistry_EmptyName):
            registry.getModel(7)
    with pytest.raises(AssertionError, match="modelId"):
        with reverts(registry.ModelRegistry_UnknownModel, modelId=8):
            registry.getModel(7)


def test_the_matcher_refuses_a_call_that_does_not_revert(escrow, caller):
    with pytest.raises(AssertionError, match="did not revert"):
        with reverts(escrow.InferenceEscrow_ZeroAmount):
            escrow.balanceOf(caller)
