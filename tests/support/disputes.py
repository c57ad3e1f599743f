"""Helpers of the dispute tests: fixtures (the court, a jury pool of extra accounts, a kit that
settles calls on chain and by receipt, challenges them, draws the jury, makes jurors vote and
resolves), and a Python draw that mirrors the registry's jury draw, written from its rule."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest
from eth_utils import keccak

from modelhub.typed_data import Attestation, Receipt, SettledCall, sign, vote_commitment

TOKEN = 10**18
GOOD_OUTPUT = b'{"label":[0]}'
BAD_OUTPUT = b'{"label":[2]}'
PHASE_AWAITING_DRAW, PHASE_VOTING, PHASE_RESOLVED = 1, 2, 3
OUTPUT_WRONG, OUTPUT_RIGHT, NO_DECISION = 1, 2, 3
# DisputeCourt.Payout
REFUND, BOND_RETURNED, CHALLENGER_REWARD, JUROR_REWARD, ACCUSED_AWARD, TREASURY = 1, 2, 3, 4, 5, 6


@dataclass
class FastCall:
    """A fast call as its caller keeps it: what a challenge shows."""

    receipt: Receipt
    receipt_signature: bytes
    attestation: Attestation
    attestation_signature: bytes
    input: bytes
    output: bytes

    def args(self) -> tuple:
        return (self.receipt.as_tuple(), self.receipt_signature, self.attestation.as_tuple(),
                self.attestation_signature, self.input, self.output)


@dataclass
class DisputeKit:
    """Drives the contracts through disputes; every method sends real transactions."""

    chain: object
    token: object
    registry: object
    relayers: object
    escrow: object
    court: object
    uploader: object
    salts: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)  # output hash -> the output bytes attested

    def output_of(self, facts: SettledCall) -> bytes:
        """The output bytes a call settled by this kit was attested with (a challenge shows them)."""
        return self.outputs[facts.output_hash]

    # ---------------------------------------------------------------- settled calls

    def model(self, price: int = 10**15) -> int:
        tx = self.registry.registerModel("iris", os.urandom(32), "ipfs://card", price, sender=self.uploader)
        return tx.return_value

    def fund(self, account, amount: int) -> None:
        self.token.mint(account, amount, sender=account)
        self.token.approve(self.escrow, amount, sender=account)
        self.escrow.deposit(amount, sender=account)

    def settle_on_chain(self, caller, relayer, model_id: int, price: int, output: bytes = GOOD_OUTPUT,
                        input: bytes = b'{"X":[[5.1,3.5,1.4,0.2]]}') -> tuple[SettledCall, bytes]:
        """A paid request fulfilled by `relayer` with `output`: (its facts, its input)."""
        self.fund(caller, price)
        tx = self.escrow.requestInference(model_id, 0, input, price, sender=caller)
        event = tx.events.filter(self.escrow.InferenceRequested)[0]
        att = Attestation(event.requestId, model_id, event.version, keccak(input), keccak(output))
        self.outputs[att.output_hash] = output
        signature = sign(relayer.private_key, att, self.chain.chain_id, self.escrow.address)
        fulfilled = self.escrow.fulfill(att.as_tuple(), signature, sender=relayer)
        facts = SettledCall(event.requestId, model_id, event.version, event.price, att.input_hash,
                            att.output_hash, relayer.address, fulfilled.timestamp)
        return facts, input

    def settle_fast(self, caller, relayer, model_id: int, calls: int, amount: int, output: bytes = GOOD_OUTPUT,
                    input: bytes = b'{"X":[[6.3,3.3,6.0,2.5]]}', settle: bool = True) -> FastCall:
        """The `calls`-th receipt of the channel (caller, relayer, model), totalling `amount`,
        attested by `relayer` with `output`, and settled unless `settle` is False."""
        self.token.mint(caller, amount, sender=caller)
        self.token.approve(self.escrow, amount, sender=caller)
        self.escrow.reserveFor(caller, relayer, amount, sender=caller)
        receipt = Receipt(caller.address, relayer.address, model_id, calls, amount,
                          self.chain.pending_timestamp + 86_400)
        receipt_signature = sign(caller.private_key, receipt, self.chain.chain_id, self.escrow.address)
        request_id = int.from_bytes(bytes(self.escrow.hashReceipt(receipt.as_tuple())), "big")
        att = Attestation(request_id, model_id, 1, keccak(input), keccak(output))
        self.outputs[att.output_hash] = output
        att_signature = sign(relayer.private_key, att, self.chain.chain_id, self.escrow.address)
        if settle:
            self.escrow.settleReceipts([receipt.as_tuple()], [receipt_signature], sender=relayer)
        return FastCall(receipt, receipt_signature, att, att_signature, input, output)

    # ---------------------------------------------------------------- the game

    def approve_bond(self, challenger) -> int:
        bond = self.court.terms().challengeBond
        self.token.mint(challenger, bond, sender=challenger)
        self.token.approve(self.court, bond, sender=challenger)
        return bond

    def challenge(self, facts: SettledCall, input: bytes, challenger) -> int:
        self.approve_bond(challenger)
        tx = self.court.challengeRequest(facts.as_tuple(), input, self.output_of(facts), sender=challenger)
        return tx.events.filter(self.court.DisputeOpened)[0].disputeId

    def challenge_fast(self, call: FastCall, challenger) -> int:
        self.approve_bond(challenger)
        tx = self.court.challengeReceipt(*call.args(), sender=challenger)
        return tx.events.filter(self.court.DisputeOpened)[0].disputeId

    def to_draw_block(self, dispute_id: int) -> None:
        draw_block = self.court.getDispute(dispute_id).drawBlock
        head = self.chain.blocks.head.number
        # The draw runs in the next block: it must be at least the draw block.
        if head + 1 < draw_block:
            self.chain.mine(draw_block - head - 1)

    def draw(self, dispute_id: int, sender) -> list[str]:
        self.to_draw_block(dispute_id)
        self.court.drawJury(dispute_id, sender=sender)
        return list(self.court.getDispute(dispute_id).jurors)

    def commit(self, dispute_id: int, juror, vote: int):
        salt = os.urandom(32)
        self.salts[(dispute_id, juror.address)] = (vote, salt)
        return self.court.commitVote(dispute_id, vote_commitment(dispute_id, juror.address, vote, salt), sender=juror)

    def to_reveals(self, dispute_id: int) -> None:
        self.chain.pending_timestamp = self.court.getDispute(dispute_id).commitDeadline + 1

    def reveal(self, dispute_id: int, juror):
        vote, salt = self.salts[(dispute_id, juror.address)]
        return self.court.revealVote(dispute_id, vote, salt, sender=juror)

    def vote(self, dispute_id: int, votes: dict, reveal: set | None = None) -> None:
        """Each juror in `votes` (account -> vote) commits; those in `reveal` (default: all) reveal."""
        for juror, vote in votes.items():
            self.commit(dispute_id, juror, vote)
        self.to_reveals(dispute_id)
        for juror in votes:
            if reveal is None or juror in reveal:
                self.reveal(dispute_id, juror)

    def to_resolution(self, dispute_id: int) -> None:
        self.chain.pending_timestamp = self.court.getDispute(dispute_id).revealDeadline + 1

    def bonds(self, accounts) -> dict:
        return {a.address: self.relayers.relayerInfo(a)[1] for a in accounts}


# ---------------------------------------------------------------- fixtures (imported by conftests)


@pytest.fixture(scope="session")
def court(project, deployment):
    return project.DisputeCourt.at(deployment.dispute_court)


@pytest.fixture(scope="session")
def juror_accounts(accounts, deployer):
    """Seven more accounts with gas money, to bond as the jury pool."""
    extra = [accounts.generate_test_account() for _ in range(7)]
    for account in extra:
        deployer.transfer(account, 10**20)
    return extra


@pytest.fixture
def jury_pool(bond, juror_accounts):
    """pool(n=5, amounts=None) -> the first n juror accounts, bonded (the minimum bond by default).
    Bond them before a challenge: the pool's weights stay frozen while its draw is pending."""
    from tests.conftest import PARAMS

    def pool_(n: int = 5, amounts=None):
        for i, account in enumerate(juror_accounts[:n]):
            bond(account, amounts[i] if amounts else PARAMS.min_bond)
        return juror_accounts[:n]

    return pool_


@pytest.fixture
def kit(chain, token, registry, relayers, escrow, court, uploader):
    return DisputeKit(chain, token, registry, relayers, escrow, court, uploader)


# ---------------------------------------------------------------- the draw, in Python


def reference_draw(weights: list[int], seed: bytes, count: int, skip: set[int]) -> list[int]:
    """The registry's jury draw from its rule: slots 1..n weighted by `weights` (index 0 is
    slot 1); the k-th pick is keccak(seed, k) modulo the weight not yet picked or skipped,
    counted along the slots in order, skipping those. Returns the slots picked, in order."""
    taken = {s for s in skip if 1 <= s <= len(weights) and weights[s - 1] > 0}
    picked: list[int] = []
    for k in range(count):
        left = sum(w for s, w in enumerate(weights, 1) if s not in taken)
        if left == 0:
            break
        point = int.from_bytes(keccak(seed + k.to_bytes(32, "big")), "big") % left
        for slot, weight in enumerate(weights, 1):
            if slot in taken:
                continue
            if point < weight:
                picked.append(slot)
                taken.add(slot)
                break
            point -= weight
    return picked
