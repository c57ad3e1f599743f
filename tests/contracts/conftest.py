"""Fixtures of the contract tests beyond the shared ones in tests/conftest.py."""

from __future__ import annotations

import pytest

from modelhub.deployments import DeployParams, deploy


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
    params = DeployParams(
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
