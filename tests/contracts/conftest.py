"""Fixtures of the contract tests beyond the shared ones in tests/conftest.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

from modelhub.deployments import deploy
from modelhub.typed_data import Receipt
from modelhub.typed_data import sign as sign_receipt_with_key

from tests.conftest import PARAMS
from tests.support.disputes import court, juror_accounts, jury_pool, kit  # noqa: F401 (fixtures)


@pytest.fixture(scope="session")
def third_payee(accounts):
    return accounts[8]


@pytest.fixture(scope="session")
def other_caller(accounts):
    return accounts[9]


@pytest.fixture
def settle(escrow, sign):
    """settle(call, relayer) -> receipt: fulfil `call` with `relayer`'s signature."""

    def settle_(call, relayer, **changes):
        att = call.attestation(**changes)
        return escrow.fulfill(att.as_tuple(), sign(relayer, att), sender=relayer)

    return settle_


@pytest.fixture
def fot_stack(project, deployer, treasury, relayers, escrow):
    """A second escrow and relayer registry wired to a token that burns 1% of each transfer,
    with the same parameters as the session deployment."""
    params = replace(
        PARAMS,
        protocol_fee_bps=escrow.protocolFeeBps(),
        relayer_fee_bps=escrow.relayerFeeBps(),
        min_bond=relayers.minBond(),
        unbond_delay=relayers.unbondDelay(),
        request_timeout=escrow.requestTimeout(),
    )
    fot = deployer.deploy(project.FeeOnTransferToken)
    stack = deploy(deployer, token=fot.address, treasury=treasury.address, params=params)
    return (
        fot,
        project.RelayerRegistry.at(stack.relayer_registry),
        project.InferenceEscrow.at(stack.inference_escrow),
    )


# ---------------------------------------------------------------- receipts (off-chain calls)


@pytest.fixture
def sign_receipt(chain, escrow):
    """sign_receipt(signer, receipt, chain_id=..., verifying_contract=...) -> 65-byte EIP-712
    signature of `receipt` in the escrow's domain; `signer` is a test account or a raw key."""

    def sign_(signer, receipt: Receipt, chain_id: int | None = None, verifying_contract: str | None = None) -> bytes:
        return sign_receipt_with_key(
            getattr(signer, "private_key", signer),
            receipt,
            chain_id if chain_id is not None else chain.chain_id,
            verifying_contract or escrow.address,
        )

    return sign_


@pytest.fixture
def make_receipt(chain, caller, relayer):
    """make_receipt(model_id, calls, amount, payer=caller, to=relayer, deadline=in a day) -> Receipt:
    the totals of the channel (payer, to, model_id) after `calls` calls costing `amount`."""
    default_payer, default_relayer = caller, relayer

    def make(model_id: int, calls: int, amount: int, payer=None, to=None, deadline: int | None = None) -> Receipt:
        return Receipt(
            getattr(payer or default_payer, "address", payer or default_payer),
            getattr(to or default_relayer, "address", to or default_relayer),
            model_id,
            calls,
            amount,
            chain.pending_timestamp + 86_400 if deadline is None else deadline,
        )

    return make


@pytest.fixture
def signed(sign_receipt, caller):
    """signed(receipt, signer=caller) -> (receipt, signature), an item for settle_receipts."""

    def signed_(receipt: Receipt, signer=None):
        return receipt, sign_receipt(signer or caller, receipt)

    return signed_


@pytest.fixture
def settle_receipts(escrow, accounts):
    """settle_receipts((receipt, signature), ..., sender=<the first item's relayer>) -> transaction
    receipt of one settleReceipts call with those items, in order (only a receipt's own relayer
    may settle it)."""

    def settle_(*items, sender=None):
        if sender is None:
            named = items[0][0].relayer.lower()
            sender = next(a for a in accounts if a.address.lower() == named)
        return escrow.settleReceipts(
            [receipt.as_tuple() for receipt, _ in items], [signature for _, signature in items], sender=sender
        )

    return settle_


@pytest.fixture
def reserve(fund, escrow, relayer):
    """reserve(account, amount, to=relayer): mint, deposit and reserve `amount` for `to`'s receipts."""

    def reserve_(account, amount: int, to=None) -> None:
        fund(account, amount)
        escrow.reserve(to or relayer, amount, sender=account)

    return reserve_


@pytest.fixture
def reserved(escrow):
    """reserved(caller, relayer) -> what `caller` has set aside for `relayer`'s receipts."""

    def reserved_(caller, relayer) -> int:
        return escrow.reservation(caller, relayer)[0]

    return reserved_


@pytest.fixture
def wallet(project, deployer, caller):
    """An ERC-1271 TestWallet whose owner is `caller` (it answers isValidSignature for its key)."""
    return deployer.deploy(project.TestWallet, caller)


# ---------------------------------------------------------------- designated requests


@pytest.fixture
def advance(chain):
    """advance(seconds): the next block's timestamp is that much later than the head's."""

    def advance_(seconds: int) -> None:
        chain.pending_timestamp = chain.blocks.head.timestamp + seconds

    return advance_
