"""A reference model of the dispute court in plain Python, written from docs/disputes.md (not from
the Solidity): challenges, the jury drawn from the frozen pool, commit and reveal, the payout table
to the wei, penalties, bond holds, claims and terms that change with notice.

Like reference.py, every operation takes the time (and, where it matters, the block) it runs at
and either applies its effects or raises `Revert` naming the rules it breaks, any one of which
the contract may report. The court's money moves through the `Hub` model it is built on: the
challenge bond from the challenger to the court, slashes from the relayer registry to the court,
claims from the court to their owner. The bonds, holds and jury pool are the Hub's (the relayer
registry's); the court only calls on them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from eth_abi import encode as abi_encode
from eth_utils import keccak

from .reference import FULFILLED, Hub, Revert, _check

VOTE_MATCHES, VOTE_WRONG = 1, 2
AWAITING_DRAW, VOTING, RESOLVED = 1, 2, 3
OUTPUT_WRONG, OUTPUT_RIGHT, NO_DECISION = 1, 2, 3
# Why an amount was credited (DisputeCourt.Payout, the Credited event's reason).
REFUND, BOND_RETURNED, CHALLENGER_REWARD, JUROR_REWARD, ACCUSED_AWARD, TREASURY = range(1, 7)
MAX_JURY_SIZE = 31
MIN_DRAW_DELAY = 2
ASSUMED_BLOCK_SECONDS = 12  # the block time the unbond-delay rule assumes
MAX_REFUND = 2**128 - 1  # LIMIT: a dispute's refund is capped at this (no bond holds more)


def vote_commitment(dispute_id: int, juror: str, vote: int, salt: bytes) -> bytes:
    """keccak256(abi.encode(disputeId, juror, vote, salt)), what a juror commits to."""
    return keccak(abi_encode(["uint256", "address", "uint8", "bytes32"], [dispute_id, juror, vote, salt]))


@dataclass(frozen=True)
class Terms:
    """The parameters of the game, in DisputeCourt.Terms' order."""

    challenge_bond: int
    slash_amount: int
    challenger_reward: int
    juror_reward: int
    juror_penalty: int
    dispute_window: int
    commit_period: int
    reveal_period: int
    draw_delay: int
    jury_size: int

    def as_tuple(self) -> tuple:
        return (self.challenge_bond, self.slash_amount, self.challenger_reward, self.juror_reward,
                self.juror_penalty, self.dispute_window, self.commit_period, self.reveal_period,
                self.draw_delay, self.jury_size)  # fmt: skip

    def problems(self, min_bond: int, unbond_delay: int) -> list[str]:
        """The rules that make lying unprofitable and keep every payout covered, broken by these terms."""
        broken = []
        if not 3 <= self.jury_size <= MAX_JURY_SIZE or self.jury_size % 2 == 0:
            broken.append("DisputeCourt_InvalidJurySize")
        if self.draw_delay < MIN_DRAW_DELAY:
            broken.append("DisputeCourt_DrawDelayTooShort")
        if 0 in (self.dispute_window, self.commit_period, self.reveal_period):
            broken.append("DisputeCourt_ZeroPeriod")
        if self.challenge_bond == 0 or self.challenge_bond < self.juror_reward:
            broken.append("DisputeCourt_ChallengeBondTooLow")
        if self.slash_amount <= self.challenger_reward + self.juror_reward:
            broken.append("DisputeCourt_SlashTooLow")
        if self.slash_amount > min_bond:
            broken.append("DisputeCourt_SlashAboveMinBond")
        whole = self.dispute_window + self.draw_delay * ASSUMED_BLOCK_SECONDS + self.commit_period + self.reveal_period
        if unbond_delay <= whole:
            broken.append("DisputeCourt_UnbondDelayTooShort")
        return broken


@dataclass
class Ballot:
    seat: int  # 1-based, in draw order
    commitment: bytes = bytes(32)
    vote: int = 0  # 0: not revealed


@dataclass
class Dispute:
    dispute_id: int
    request_id: int
    attestation: bytes  # the EIP-712 digest of the challenged attestation
    accused: str
    challenger: str
    caller: str
    refund: int
    terms_id: int
    draw_block: int
    phase: int = AWAITING_DRAW
    outcome: int = 0
    commit_deadline: int = 0
    reveal_deadline: int = 0
    jurors: list[str] = field(default_factory=list)
    ballots: dict[str, Ballot] = field(default_factory=dict)

    @property
    def revealed(self) -> int:
        return sum(1 for b in self.ballots.values() if b.vote)

    def votes(self, vote: int) -> int:
        return sum(1 for b in self.ballots.values() if b.vote == vote)

    def info(self) -> tuple:
        """What getDispute reads, in DisputeInfo's order."""
        return (self.request_id, self.accused, self.challenger, self.caller, self.refund, self.terms_id,
                self.phase, self.outcome, self.draw_block, self.commit_deadline, self.reveal_deadline,
                tuple(self.jurors), self.revealed, self.votes(VOTE_MATCHES), self.votes(VOTE_WRONG))  # fmt: skip


@dataclass
class Ending:
    """How a dispute ended: its outcome, votes and slash, every credit (account, amount, reason)
    and every juror penalty (juror, amount taken)."""

    dispute_id: int
    outcome: int
    votes_match: int
    votes_wrong: int
    slashed: int
    credits: list[tuple[str, int, int]]
    penalties: list[tuple[str, int]]


@dataclass
class Court:
    hub: Hub
    address: str
    owner: str
    terms_by_id: dict[int, Terms]
    terms_id: int = 1  # in force until next_terms_at
    next_terms_id: int = 0
    next_terms_at: int = 0  # 0: no change pending
    disputes: dict[int, Dispute] = field(default_factory=dict)
    dispute_of: dict[bytes, int] = field(default_factory=dict)
    claimable: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    bonds_held: int = 0
    refunded: set[int] = field(default_factory=set)

    # ------------------------------------------------------------ terms

    def terms_id_in_force(self, now: int) -> int:
        if self.next_terms_at and now >= self.next_terms_at:
            return self.next_terms_id
        return self.terms_id

    def terms(self, now: int) -> Terms:
        return self.terms_by_id[self.terms_id_in_force(now)]

    def pending_terms(self, now: int) -> tuple[int, int]:
        if self.next_terms_at == 0 or now >= self.next_terms_at:
            return (0, 0)
        return (self.next_terms_id, self.next_terms_at)

    def set_terms(self, sender: str, terms: Terms, now: int) -> int:
        """New terms apply one dispute window (of the terms in force) later, replacing a change
        still pending; open disputes keep theirs. Returns when they apply."""
        if sender != self.owner:
            raise Revert("OwnableUnauthorizedAccount")
        _check(terms.problems(self.hub.min_bond_at(now), self.hub.unbond_delay))
        in_force = self.terms_id_in_force(now)
        new_id = len(self.terms_by_id) + 1
        self.terms_by_id[new_id] = terms
        self.terms_id, self.next_terms_id = in_force, new_id
        self.next_terms_at = now + self.terms_by_id[in_force].dispute_window
        return self.next_terms_at

    # ------------------------------------------------------------ challenges

    def challenge_request(self, sender: str, facts: tuple, input_: bytes, output: bytes, attestation: bytes,
                          now: int, block: int) -> Dispute:  # fmt: skip
        """An on-chain call, by the facts its settlement record holds (SettlementRecord.Facts)."""
        request_id, _, _, price, input_hash, output_hash, relayer, settled_at = facts
        broken = self._bytes_problems(input_hash, input_, output_hash, output)
        request = self.hub.requests.get(request_id)
        if request is None:
            broken.append("DisputeCourt_UnknownRequest")
        elif request.status != FULFILLED:
            broken.append("DisputeCourt_NotSettled")
        elif tuple(facts) != request.facts():
            broken.append("DisputeCourt_RecordMismatch")  # only the escrow writes records
        elif now > settled_at + self.terms(now).dispute_window:
            broken.append("DisputeCourt_WindowClosed")
        _check(broken)
        # The caller is the one in the request id (its high 160 bits).
        return self._open(sender, request_id, attestation, relayer, request.caller, price, now, block)

    def challenge_receipt(self, sender: str, receipt, receipt_digest: int, att: tuple, att_signer: str | None,
                          input_: bytes, output: bytes, attestation: bytes, now: int, block: int) -> Dispute:  # fmt: skip
        """A fast call: the caller's receipt (a reference.SignedReceipt, with who its signature
        recovers to), the relayer's attestation of it (fields, and who its signature recovers
        to), and the bytes. The receipt must be paid: its channel settled at least its calls."""
        request_id, model_id, _, input_hash, output_hash = att
        broken = []
        if request_id != receipt_digest or model_id != receipt.model_id:
            broken.append("DisputeCourt_ReceiptMismatch")
        broken += self._bytes_problems(input_hash, input_, output_hash, output)
        if not self.hub.signed_by(receipt.caller, receipt.signer, now):
            broken.append("DisputeCourt_InvalidReceiptSignature")
        if att_signer is None or att_signer != receipt.relayer:
            broken.append("DisputeCourt_InvalidAttestationSignature")
        settled_calls, settled_amount, settled_at = self.hub.channels.get(receipt.channel, (0, 0, 0))
        if receipt.calls == 0 or receipt.calls > settled_calls:
            broken.append("DisputeCourt_ReceiptNotSettled")
        elif now > settled_at + self.terms(now).dispute_window:
            broken.append("DisputeCourt_WindowClosed")  # the window runs from the channel's last settlement
        _check(broken)
        # The caller paid the receipt's average per call (the channel settled at least its amount).
        refund = min(min(receipt.amount, settled_amount) // receipt.calls, MAX_REFUND)
        return self._open(sender, request_id, attestation, receipt.relayer, receipt.caller, refund, now, block)

    @staticmethod
    def _bytes_problems(input_hash: bytes, input_: bytes, output_hash: bytes, output: bytes) -> list[str]:
        broken = []
        if keccak(input_) != input_hash:
            broken.append("DisputeCourt_InputMismatch")
        if keccak(output) != output_hash:
            broken.append("DisputeCourt_OutputMismatch")
        return broken

    def _open(self, sender: str, request_id: int, attestation: bytes, accused: str, caller: str, refund: int,
              now: int, block: int) -> Dispute:  # fmt: skip
        """One dispute per attestation, ever; the challenge bond is posted, the accused's bond
        held, and the pool's weights freeze until the jury is drawn."""
        hub = self.hub
        terms_id = self.terms_id_in_force(now)
        bond = self.terms_by_id[terms_id].challenge_bond
        broken = []
        if attestation in self.dispute_of:
            broken.append("DisputeCourt_AlreadyDisputed")
        if accused not in hub.relayers:
            broken.append("RelayerRegistry_NotRegistered")  # only a registered relayer's bond can be held
        if hub.tokens[sender] < bond:
            broken.append("ERC20InsufficientBalance")
        _check(broken)
        dispute_id = len(self.disputes) + 1
        d = Dispute(dispute_id, request_id, attestation, accused, sender, caller, refund, terms_id,
                    block + self.terms_by_id[terms_id].draw_delay)  # fmt: skip
        self.disputes[dispute_id] = d
        self.dispute_of[attestation] = dispute_id
        self.bonds_held += bond
        hub.holds[accused] += 1
        hub.draws_pending += 1
        hub._move(sender, self.address, bond)
        return d

    # ------------------------------------------------------------ the jury

    def _existing(self, dispute_id: int, phase: int) -> Dispute:
        d = self.disputes.get(dispute_id)
        if d is None:
            raise Revert("DisputeCourt_UnknownDispute")
        if d.phase != phase:
            raise Revert("DisputeCourt_WrongPhase")
        return d

    def check_draw(self, dispute_id: int, block: int) -> None:
        """Whether a draw in block `block` goes through (the jury itself depends on that block's
        randomness: `draw` once it is known)."""
        d = self._existing(dispute_id, AWAITING_DRAW)
        if block < d.draw_block:
            raise Revert("DisputeCourt_DrawTooEarly")

    def draw(self, dispute_id: int, prevrandao: bytes, now: int) -> Ending | None:
        """Draws the jury from the pool as it stood since the challenge (the weights were frozen),
        seeded by the block's randomness; too few jurors for a majority of the seats end the
        dispute without a decision (returned)."""
        d = self.disputes[dispute_id]
        t = self.terms_by_id[d.terms_id]
        seed = keccak(abi_encode(["bytes32", "uint256"], [prevrandao, dispute_id]))
        jurors = self.hub.draw_jurors(seed, t.jury_size, (d.accused, d.challenger, d.caller))
        self.hub.draws_pending -= 1
        if len(jurors) <= t.jury_size // 2:
            return self._end(d, NO_DECISION, now)
        d.phase = VOTING
        d.jurors = jurors
        d.ballots = {juror: Ballot(seat) for seat, juror in enumerate(jurors, 1)}
        d.commit_deadline = now + t.commit_period
        d.reveal_deadline = d.commit_deadline + t.reveal_period
        for juror in jurors:
            self.hub.holds[juror] += 1
        return None

    def commit(self, sender: str, dispute_id: int, commitment: bytes, now: int) -> None:
        d = self._existing(dispute_id, VOTING)
        broken = []
        if now > d.commit_deadline:
            broken.append("DisputeCourt_CommitClosed")
        ballot = d.ballots.get(sender)
        if ballot is None:
            broken.append("DisputeCourt_NotJuror")
        elif ballot.commitment != bytes(32):
            broken.append("DisputeCourt_AlreadyCommitted")
        if commitment == bytes(32):
            broken.append("DisputeCourt_ZeroCommitment")
        _check(broken)
        ballot.commitment = commitment

    def reveal(self, sender: str, dispute_id: int, vote: int, salt: bytes, now: int) -> None:
        """Reveals open only when commits have closed; a commitment names its juror, so a copied
        one cannot be opened."""
        d = self._existing(dispute_id, VOTING)
        broken = []
        if now <= d.commit_deadline:
            broken.append("DisputeCourt_RevealNotOpen")
        if now > d.reveal_deadline:
            broken.append("DisputeCourt_RevealClosed")
        ballot = d.ballots.get(sender)
        if ballot is None:
            broken.append("DisputeCourt_NotJuror")
        elif ballot.commitment == bytes(32):
            broken.append("DisputeCourt_NotCommitted")
        elif ballot.vote:
            broken.append("DisputeCourt_AlreadyRevealed")
        if vote not in (VOTE_MATCHES, VOTE_WRONG):
            broken.append("DisputeCourt_InvalidVote")
        elif ballot is not None and ballot.commitment != vote_commitment(dispute_id, sender, vote, salt):
            broken.append("DisputeCourt_CommitmentMismatch")
        _check(broken)
        ballot.vote = vote

    def resolve(self, dispute_id: int, now: int) -> Ending:
        """After the reveal deadline, or once every juror revealed; a verdict needs more than
        half of the seats (not of the votes) the same way."""
        d = self._existing(dispute_id, VOTING)
        if now <= d.reveal_deadline and d.revealed < len(d.jurors):
            raise Revert("DisputeCourt_TooEarlyToResolve")
        half = self.terms_by_id[d.terms_id].jury_size // 2
        if d.votes(VOTE_WRONG) > half:
            outcome = OUTPUT_WRONG
        elif d.votes(VOTE_MATCHES) > half:
            outcome = OUTPUT_RIGHT
        else:
            outcome = NO_DECISION
        return self._end(d, outcome, now)

    # ------------------------------------------------------------ the payout table

    def _end(self, d: Dispute, outcome: int, now: int) -> Ending:
        hub, t = self.hub, self.terms_by_id[d.terms_id]
        d.phase, d.outcome = RESOLVED, outcome
        self.bonds_held -= t.challenge_bond
        credits: list[tuple[str, int, int]] = []
        slashed = pool = to_treasury = 0
        majority_vote = {OUTPUT_WRONG: VOTE_WRONG, OUTPUT_RIGHT: VOTE_MATCHES}.get(outcome, 0)
        if outcome == OUTPUT_WRONG:
            # A call's price is refunded at most once, whichever of its attestations is caught.
            refund = 0 if d.request_id in self.refunded else d.refund
            if refund:
                self.refunded.add(d.request_id)
            slashed = hub.slash(d.accused, t.slash_amount + refund, now)
            # A bond too small pays the refund, the challenger's reward, the jurors', the treasury, in that order.
            left = slashed
            to_caller = min(refund, left)
            left -= to_caller
            reward = min(t.challenger_reward, left)
            left -= reward
            pool = min(t.juror_reward, left)
            to_treasury = left - pool
            credits += [(d.caller, to_caller, REFUND), (d.challenger, t.challenge_bond, BOND_RETURNED),
                        (d.challenger, reward, CHALLENGER_REWARD)]  # fmt: skip
        elif outcome == OUTPUT_RIGHT:
            pool = t.juror_reward  # out of the failed challenge's bond; the accused gets the rest
            credits.append((d.accused, t.challenge_bond - pool, ACCUSED_AWARD))
        else:
            credits.append((d.challenger, t.challenge_bond, BOND_RETURNED))
        # Penalties: every juror out of the majority; without one, every juror who did not reveal.
        majority, penalties = [], []
        for juror in d.jurors:
            vote = d.ballots[juror].vote
            if (vote == majority_vote) if majority_vote else vote != 0:
                majority.append(juror)
            elif t.juror_penalty:
                taken = hub.slash(juror, t.juror_penalty, now)
                if taken:
                    penalties.append((juror, taken))
        taken_total = sum(amount for _, amount in penalties)
        if majority_vote:
            pool += taken_total
            # Equal shares rounded down; the first of the majority in draw order takes the rest.
            share = pool // len(majority)
            credits.append((majority[0], pool - share * (len(majority) - 1), JUROR_REWARD))
            credits += [(juror, share, JUROR_REWARD) for juror in majority[1:]]
        else:
            to_treasury += taken_total
        credits.append((hub.treasury, to_treasury, TREASURY))
        credits = [c for c in credits if c[1]]
        for account, amount, _ in credits:
            self.claimable[account] += amount
        for account in [d.accused, *d.jurors]:
            hub.holds[account] -= 1
        return Ending(d.dispute_id, outcome, d.votes(VOTE_MATCHES), d.votes(VOTE_WRONG), slashed, credits, penalties)

    # ------------------------------------------------------------ payouts

    def claim(self, sender: str) -> int:
        amount = self.claimable[sender]
        if amount == 0:
            raise Revert("DisputeCourt_NothingToClaim")
        self.claimable[sender] = 0
        self.hub._move(self.address, sender, amount)
        return amount

    def liabilities(self) -> int:
        """What the court owes: every claimable payout and the challenge bonds of open disputes."""
        return sum(self.claimable.values()) + self.bonds_held
