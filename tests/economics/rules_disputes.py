"""Rules of the economics state machine for disputes: challenges of on-chain and fast calls (of
lies and of true outputs, forged, at the window's edges, by anyone), jury draws, votes by each
juror's character, resolutions, claims, pool syncs, jurors' bonds and changes of the court's terms;
and the properties every dispute's end is checked for."""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_utils import keccak, to_checksum_address
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from . import reference as ref
from . import reference_court as court_ref
from .machine_base import ACTOR, PICK, TOPIC_CREDITED, TOPIC_DISPUTE_RESOLVED, TOPIC_JUROR_PENALIZED
from .signing import Attestation, Receipt

# How a juror votes: honest (commits the truth at once and reveals it), liar (the opposite), lazy
# (commits the truth, never reveals), absent (never commits).
HONEST, LIAR, LAZY, ABSENT = "honest", "liar", "lazy", "absent"
# The jurors bonded in the base state, in order; actors drawn as jurors vote by their index (an
# honest relayer, which follows the relayer policy, is an honest juror too).
JUROR_CHARACTERS = (HONEST, HONEST, HONEST, LIAR, LAZY, ABSENT)
ACTOR_CHARACTERS = (HONEST, LIAR, HONEST, ABSENT, HONEST, LAZY, HONEST, LIAR, HONEST)
TOKEN = 10**18
# The terms the machine's examples start under (the owner set them in the base state): a jury of
# 3 (fewer transactions per dispute than the deployment's 5, which set_court_terms brings back)
# and odd amounts, so that every rounding shows.
BASE_TERMS = court_ref.Terms(10 * TOKEN + 1, 50 * TOKEN + 3, 10 * TOKEN + 7, 5 * TOKEN + 2, TOKEN + 1, 3_600, 600, 600, 2, 3)

CALL_FORGERY = st.sampled_from(
    ["none"] * 8 + ["input", "output", "settled_at", "price", "relayer", "pending", "ended", "unknown"]
)
FAST_FORGERY = st.sampled_from(
    ["none"] * 8 + ["input", "output", "request_id", "model", "receipt_key", "attestation_key", "unpaid"]
)
EDGE = st.sampled_from([None, None, None, None, -1, 0, 1])
VOTE_ERROR = st.sampled_from(
    ["stranger_commit", "commit_again", "zero_commit", "late_commit", "early_reveal", "wrong_salt", "invalid_vote",
     "reveal_again", "late_reveal", "copied", "not_committed"]
)  # fmt: skip


def true_output(model_id: int, version: int, input_hash: bytes) -> bytes:
    """What version `version` of model `model_id` gives on an input: the test's stand-in for
    running the model, which every honest juror computes the same way."""
    n = int.from_bytes(keccak(model_id.to_bytes(32, "big") + version.to_bytes(32, "big") + input_hash)[:2], "big")
    return b'{"y":[%d]}' % (1000 + n)


@dataclass
class DisputeNote:
    """What the test knows of a dispute beyond the chain: whether the attested output is a lie,
    and each drawn juror's character."""

    lie: bool
    characters: dict[str, str] = field(default_factory=dict)


class DisputeRules:
    """Dispute rules (a mixin of EconomicsMachine, on MachineBase's plumbing)."""

    # ------------------------------------------------------------ truth, characters, votes

    def attested_output(self, model_id: int, version: int, input_hash: bytes, signer: str | None, pick: int) -> bytes:
        """The output a relayer attests for a call: the model's, or (one time in four, never by
        an honest relayer) a made-up one. Kept, for challenges."""
        if signer in self.honest or pick % 4:
            output = true_output(model_id, version, input_hash)
        else:
            output = b'{"y":[%d]}' % pick
        self.outputs[keccak(output)] = output
        return output

    def is_lie(self, model_id: int, version: int, input_hash: bytes, output: bytes) -> bool:
        """Whether an attested output is not what the model version gives (an unknown model or
        version gives nothing an attestation could match)."""
        m = self.hub.models.get(model_id)
        if m is None or not 1 <= version <= m.latest_version:
            return True
        return output != true_output(model_id, version, input_hash)

    def character(self, account: str) -> str:
        if account in self.honest:
            return HONEST
        jurors = [j for j, _ in self.w.jurors]
        if account in jurors:
            return JUROR_CHARACTERS[jurors.index(account) % len(JUROR_CHARACTERS)]
        if account in self.w.actors:
            return ACTOR_CHARACTERS[self.w.actors.index(account) % len(ACTOR_CHARACTERS)]
        return ABSENT

    @staticmethod
    def vote_of(note: DisputeNote, character: str) -> int:
        wrong = note.lie != (character == LIAR)
        return court_ref.VOTE_WRONG if wrong else court_ref.VOTE_MATCHES

    @staticmethod
    def salt(dispute_id: int, juror: str) -> bytes:
        return keccak(b"salt" + dispute_id.to_bytes(32, "big") + bytes.fromhex(juror[2:]))

    def court_send(self, predict, sender: str, fn: str, *args):
        return self.transact(predict, sender, self.w.court, fn, *args, abi=self.w.abi["court"])

    def commit_as(self, juror: str, dispute_id: int, commitment: bytes):
        return self.court_send(
            lambda ts: self.court.commit(juror, dispute_id, commitment, ts), juror, "commitVote", dispute_id, commitment
        )

    def reveal_as(self, juror: str, dispute_id: int, vote: int, salt: bytes):
        return self.court_send(
            lambda ts: self.court.reveal(juror, dispute_id, vote, salt, ts), juror, "revealVote", dispute_id, vote, salt
        )

    def registry_send(self, predict, sender: str, fn: str, *args):
        return self.transact(predict, sender, self.w.relayers, fn, *args, abi=self.L)

    def ensure_tokens(self, account: str, amount: int) -> None:
        if self.hub.tokens[account] < amount:
            self.mint(account, amount - self.hub.tokens[account])

    # ------------------------------------------------------------ challenges

    def pick_challenger(self, who: int, accused: str, caller: str) -> str:
        """The accused itself, the caller, or anyone (actors only: they approved the court)."""
        if who % 6 == 0 and accused in self.w.actors:
            return accused
        if who % 6 == 1 and caller in self.w.actors:
            return caller
        return self.actor(who)

    def to_window_edge(self, anchor: int, edge: int | None) -> None:
        """Moves the next block's time to one second before, at or after the end of the window
        that opened at `anchor` (under the terms in force by then)."""
        if edge is None:
            return
        ts = anchor + self.court.terms(max(self.next_ts, anchor)).dispute_window + edge
        self.next_ts = max(self.next_ts, ts)

    @precondition(lambda self: self.hub.requests)
    @rule(pick=PICK, who=ACTOR, forgery=CALL_FORGERY, edge=EDGE, fund=st.sampled_from([True] * 7 + [False]))
    def challenge_call(self, pick, who, forgery, edge, fund, target=None):
        """An on-chain call (`target`, or mostly one of the newest settled calls, often a lie)
        is challenged by its settled facts, input and output, honestly shown, sometimes with
        forged evidence, or a call that never settled."""
        hub = self.hub
        settled = sorted((r for r in hub.requests.values() if r.status == ref.FULFILLED), key=lambda r: r.settled_at)
        if pick % 3 == 0:  # what a challenger looks for: a lie
            lies = [r for r in settled if self.is_lie(r.model_id, r.version, r.input_hash, self.outputs[r.output_hash])]
            settled = lies or settled
        if target is not None:
            settled = [target]
        if forgery == "pending" or forgery == "ended" or not settled:
            status = {"pending": (ref.PENDING,), "ended": (ref.REFUNDED, ref.REJECTED)}.get(forgery, ref.ENDED)
            others = [r for r in hub.requests.values() if r.status in status]
            if not others:
                return
            r = others[pick % len(others)]
            output = b'{"y":[%d]}' % pick
            facts = [r.request_id, r.model_id, r.version, r.price, r.input_hash, keccak(output), self.actor(pick),
                     self.head_ts]  # fmt: skip
            input_ = self.inputs[r.request_id]
        else:
            r = settled[pick % len(settled)] if pick % 5 == 4 else settled[-1 - pick % min(len(settled), 4)]
            facts = list(r.facts())
            input_, output = self.inputs[r.request_id], self.outputs[r.output_hash]
            self.to_window_edge(r.settled_at, edge)
        if forgery == "input":
            input_ += b"!"
        elif forgery == "output":
            output += b"!"
        elif forgery == "settled_at":
            facts[7] += 1
        elif forgery == "price":
            facts[3] += 1
        elif forgery == "relayer":
            facts[6] = self.actor(pick + 1) if facts[6] != self.actor(pick + 1) else self.actor(pick + 2)
        elif forgery == "unknown":
            facts[0] = hub.next_request_id(self.actor(pick))
        request_id, model_id, version, _, input_hash, output_hash, accused, _ = facts
        challenger = self.pick_challenger(who, accused, r.caller)
        bond = self.court.terms(self.next_ts).challenge_bond
        if fund:
            self.ensure_tokens(challenger, bond)
        digest = Attestation(request_id, model_id, version, input_hash, output_hash).digest(self.w.chain_id, self.w.escrow)
        lie = self.is_lie(model_id, version, input_hash, output)
        d, _ = self.court_send(
            lambda ts: self.court.challenge_request(
                challenger, tuple(facts), input_, output, digest, ts, self.head_block + 1
            ),
            challenger, "challengeRequest", tuple(facts), input_, output,
        )  # fmt: skip
        if d is not None:
            self.notes[d.dispute_id] = DisputeNote(lie)

    def paid(self, view: ref.SignedReceipt) -> bool:
        """Whether a receipt's calls are paid: its channel settled at least as many."""
        return 0 < view.calls <= self.hub.channels.get(view.channel, (0, 0, 0))[0]

    def receipts_to_challenge(self, paid: bool = True) -> list:
        """Receipts submitted so far, validly signed, paid (or not)."""
        return [
            item for item in self.submitted
            if self.paid(item[0]) == paid and self.hub.signed_by(item[0].caller, item[0].signer, self.next_ts)
        ]  # fmt: skip

    @precondition(lambda self: self.submitted)
    @rule(pick=PICK, who=ACTOR, resolve=st.sampled_from([True, True, False]))
    def two_lies_about_one_call(self, pick, who, resolve):
        """A relayer that attested two made-up outputs of one paid fast call is challenged for
        both: each attestation is a dispute of its own (drawn and, mostly, resolved at once),
        and the call's price is refunded at most once."""
        liars = [
            item for item in self.receipts_to_challenge()
            if item[0].relayer not in self.honest and item[0].relayer in self.w.signers and item[0].amount
        ]  # fmt: skip
        if not liars:
            return
        item = liars[-1 - pick % min(len(liars), 4)]
        before = len(self.court.disputes)
        for variant in (1, 2):
            self.challenge_fast(
                pick=pick, who=who + variant, forgery="none", variant=variant, version=1, edge=None, fund=True, item=item
            )  # fmt: skip
        for dispute_id in range(before + 1, len(self.court.disputes) + 1):
            self.to_draw_block(dispute_id)
            self.draw(dispute_id, self.actor(who))
        for dispute_id in range(before + 1, len(self.court.disputes) + 1):
            d = self.court.disputes[dispute_id]
            if resolve and d.phase == court_ref.VOTING:
                self.next_ts = max(self.next_ts, d.reveal_deadline + 1)
                self.resolve(dispute_id, self.actor(who))

    @precondition(lambda self: self.submitted)
    @rule(
        pick=PICK,
        who=ACTOR,
        forgery=FAST_FORGERY,
        variant=st.sampled_from([0, 0, 1, 2]),
        version=st.sampled_from([1, 1, 1, 2, 0]),
        edge=EDGE,
        fund=st.sampled_from([True] * 7 + [False]),
    )
    def challenge_fast(self, pick, who, forgery, variant, version, edge, fund, item=None):
        """A fast call (the receipt `item`, or mostly one of the newest paid ones) is challenged
        by its caller's receipt and its relayer's attestation: true or made up (variant 1 and 2
        are two lies about the same call), sometimes of a version that does not exist, or with
        forged evidence, or not paid yet."""
        hub = self.hub
        wanted = [item] if item is not None else self.receipts_to_challenge(paid=forgery != "unpaid")
        if not wanted:
            return
        view, fields, signature = wanted[pick % len(wanted)] if pick % 5 == 4 else wanted[-1 - pick % min(len(wanted), 6)]
        digest = int.from_bytes(Receipt(*fields).digest(self.w.chain_id, self.w.escrow), "big")
        # The call's input, the same each time this call is challenged.
        input_ = b'{"x":"%s"}' % digest.to_bytes(32, "big")[:6].hex().encode()
        honest = view.relayer in self.honest
        if honest or version == 0:
            version = 1
        elif version == 2:  # a version the model does not have
            version = hub.models[view.model_id].latest_version + 1 if view.model_id in hub.models else 1
        if honest or variant == 0:
            output = true_output(view.model_id, version, keccak(input_))
        else:
            output = b'{"y":[%d]}' % variant
        att = [digest, view.model_id, version, keccak(input_), keccak(output)]
        key = self.w.signers.get(view.relayer)
        if forgery == "attestation_key" or key is None:
            key = self.w.signers[self.actor(pick + 1) if self.actor(pick + 1) != view.relayer else self.actor(pick + 2)]
        if forgery == "receipt_key":
            other = self.actor(pick + 3)
            signature = self.sign(view, self.w.signers[other])
            view = ref.SignedReceipt(*fields, other)
        elif forgery == "request_id":
            att[0] = (digest + 1) % 2**256
        elif forgery == "model":
            att[1] += 1
        att_signature = key.sign_attestation(Attestation(*att), self.w.chain_id, self.w.escrow)
        if forgery == "input":
            input_ += b" "
        elif forgery == "output":
            output += b" "
        settled_at = hub.channels.get(view.channel, (0, 0, 0))[2]
        if settled_at:
            self.to_window_edge(settled_at, edge)
        challenger = self.pick_challenger(who, view.relayer, view.caller)
        if fund:
            self.ensure_tokens(challenger, self.court.terms(self.next_ts).challenge_bond)
        digest_att = Attestation(*att).digest(self.w.chain_id, self.w.escrow)
        lie = self.is_lie(att[1], version, att[3], output)
        d, _ = self.court_send(
            lambda ts: self.court.challenge_receipt(
                challenger, view, digest, tuple(att), key.address, input_, output, digest_att, ts, self.head_block + 1
            ),
            challenger, "challengeReceipt", fields, signature, tuple(att), att_signature, input_, output,
        )  # fmt: skip
        if d is not None:
            self.notes[d.dispute_id] = DisputeNote(lie)

    @precondition(lambda self: self.submitted)
    @rule(pick=PICK, who=ACTOR)
    def two_lies_about_one_call_2(self, pick, who):
        """More weight on the two lies (a call's price refunded twice shows only there)."""
        self.two_lies_about_one_call(pick=pick, who=who, resolve=True)

    # ------------------------------------------------------------ the jury

    def pick_dispute(self, pick: int, phase: int) -> int:
        """A dispute in `phase` mostly, else any dispute, or one that does not exist."""
        disputes = self.court.disputes
        inside = [i for i, d in disputes.items() if d.phase == phase]
        if inside and pick % 8:
            return inside[pick % len(inside)]
        if disputes and pick % 3:
            return 1 + pick % len(disputes)
        return len(disputes) + 1

    def to_draw_block(self, dispute_id: int) -> None:
        """Mines blocks (harmless syncWeight transactions, checked like any other) until the
        next block is the dispute's draw block."""
        d = self.court.disputes[dispute_id]
        target = self.w.everyone[dispute_id % len(self.w.everyone)]
        while self.head_block + 1 < d.draw_block:
            self.registry_send(lambda ts: self.hub.sync_weight(target, ts), self.w.owner, "syncWeight", target)

    def in_phase(self, phase: int) -> bool:
        return any(d.phase == phase for d in self.court.disputes.values())

    @precondition(lambda self: self.in_phase(court_ref.AWAITING_DRAW))
    @rule(pick=PICK, early=st.sampled_from([False] * 4 + [True]), sender=ACTOR, eager=st.booleans())
    def draw_jury(self, pick, early, sender, eager):
        """Anyone draws a dispute's jury, from its draw block on (sometimes a block early); the
        drawn jurors commit at once, each by its character (and an eager one tries to reveal
        at once, before reveals open)."""
        dispute_id = self.pick_dispute(pick, court_ref.AWAITING_DRAW)
        d = self.court.disputes.get(dispute_id)
        if d is not None and d.phase == court_ref.AWAITING_DRAW and not early:
            self.to_draw_block(dispute_id)
        self.draw(dispute_id, self.actor(sender), eager=eager)

    def draw(self, dispute_id: int, sender: str, eager: bool = False) -> None:
        ok, receipt = self.court_send(
            lambda ts: self.court.check_draw(dispute_id, self.head_block + 1) or True, sender, "drawJury", dispute_id
        )
        if ok is None:
            return
        block = self.rpc.call_raw("eth_getBlockByNumber", [hex(receipt.block_number), False])
        # The seed is the block's randomness (prevrandao, which a block header calls mixHash).
        ending = self.court.draw(dispute_id, bytes.fromhex(block["mixHash"][2:]), self.head_ts)
        d, note = self.court.disputes[dispute_id], self.notes[dispute_id]
        note.characters = {juror: self.character(juror) for juror in d.jurors}
        if ending is not None:
            self.count("too few jurors: no decision")
            self.check_ending(ending, receipt)
            return
        for juror in d.jurors:
            character = note.characters[juror]
            if character == ABSENT:
                continue
            vote = self.vote_of(note, character)
            commitment = court_ref.vote_commitment(dispute_id, juror, vote, self.salt(dispute_id, juror))
            self.commit_as(juror, dispute_id, commitment)
        eager_jurors = self.pending_reveals(d)
        if eager and eager_jurors:
            juror = eager_jurors[0]
            vote, salt = self.vote_of(note, note.characters[juror]), self.salt(dispute_id, juror)
            self.reveal_as(juror, dispute_id, vote, salt)

    def pending_reveals(self, d: court_ref.Dispute) -> list[str]:
        """The jurors of a voting dispute who will reveal and have not yet: honest and lying
        ones that committed."""
        note = self.notes[d.dispute_id]
        return [
            j for j in d.jurors
            if note.characters[j] in (HONEST, LIAR) and d.ballots[j].commitment != bytes(32) and not d.ballots[j].vote
        ]  # fmt: skip

    def reveal_votes(self, d: court_ref.Dispute) -> None:
        """Honest and lying jurors of `d` reveal now, or when reveals open if later (after the
        jurors of disputes whose reveal deadline that would reach)."""
        self.juror_duties(also=d)

    def juror_duties(self, also: court_ref.Dispute | None = None) -> None:
        """Before the next transaction (at next_ts; or when the reveals of `also` open, if
        later): jurors of every dispute whose reveal deadline it would reach reveal first,
        earliest deadline first, from the opening of reveals (a juror daemon reveals as soon as
        they open)."""
        start = self.next_ts if also is None else max(self.next_ts, also.commit_deadline + 1)
        for d in sorted(self.court.disputes.values(), key=lambda d: d.reveal_deadline):
            if d.phase == court_ref.VOTING:
                n = len(self.pending_reveals(d))
                if n and (d is also or start + n + 2 > d.reveal_deadline):
                    self._reveal(d)

    def _reveal(self, d: court_ref.Dispute) -> None:
        saved = self.next_ts
        self.next_ts = max(self.head_ts + 1, d.commit_deadline + 1)
        self.in_juror_duty = True
        try:
            note = self.notes[d.dispute_id]
            for juror in self.pending_reveals(d):
                late = self.next_ts > d.reveal_deadline
                self.check(not late, f"harness: juror {juror} could not reveal by {d.reveal_deadline}")
                vote, salt = self.vote_of(note, note.characters[juror]), self.salt(d.dispute_id, juror)
                _, receipt = self.reveal_as(juror, d.dispute_id, vote, salt)
                self.check(receipt.ok, f"harness: juror {juror} could not reveal in dispute {d.dispute_id}: {receipt.error}")
        finally:
            self.in_juror_duty = False
            self.next_ts = max(saved, self.next_ts)

    @precondition(lambda self: self.in_phase(court_ref.VOTING))
    @rule(
        pick=PICK, early=st.sampled_from([False] * 3 + [True]), reveal=st.booleans(), late=st.sampled_from([1, 1, 2, 300]),
        sender=ACTOR,
    )  # fmt: skip
    def resolve_dispute(self, pick, early, reveal, late, sender):
        """Anyone resolves a voting dispute after its reveal deadline (or one second before
        it), or early: refused unless every juror revealed."""
        dispute_id = self.pick_dispute(pick, court_ref.VOTING)
        d = self.court.disputes.get(dispute_id)
        if d is not None and d.phase == court_ref.VOTING:
            if early and reveal:
                self.reveal_votes(d)
            elif not early:
                self.next_ts = max(self.next_ts, d.reveal_deadline + (late if late < 300 else pick))
            elif late == 2:
                self.next_ts = max(self.next_ts, d.reveal_deadline)
        self.resolve(dispute_id, self.actor(sender))

    def resolve(self, dispute_id: int, sender: str) -> None:
        ending, receipt = self.court_send(lambda ts: self.court.resolve(dispute_id, ts), sender, "resolve", dispute_id)
        if ending is not None:
            self.check_ending(ending, receipt)

    @precondition(lambda self: self.in_phase(court_ref.VOTING))
    @rule(pick=PICK, kind=VOTE_ERROR, who=ACTOR)
    def vote_out_of_turn(self, pick, kind, who):
        """Commits and reveals the court must refuse, in a voting dispute."""
        voting = [d for d in self.court.disputes.values() if d.phase == court_ref.VOTING]
        self.meddle(voting[pick % len(voting)], kind, pick, who)

    def meddle(self, d: court_ref.Dispute, kind: str, pick: int, who: int) -> None:
        """A commit or reveal out of turn: by a stranger, twice, zero, after the deadline,
        before reveals open, with another salt or vote, a copied commitment opened with the
        copied juror's vote, an uncommitted reveal, a lazy juror's late reveal."""
        note = self.notes[d.dispute_id]
        by = {c: [j for j in d.jurors if note.characters[j] == c] for c in (HONEST, LIAR, LAZY, ABSENT)}
        committed = [j for j in d.jurors if d.ballots[j].commitment != bytes(32)]
        absent = by[ABSENT]
        sender, commitment, vote, salt, reveal = None, keccak(b"vote %d" % pick), 1 + pick % 2, keccak(b"salt"), False
        if kind == "stranger_commit":
            sender = self.actor(who) if self.actor(who) not in d.ballots else self.w.owner
        elif kind == "commit_again" and committed:
            sender = committed[pick % len(committed)]
        elif kind == "zero_commit" and absent:
            sender, commitment = absent[0], bytes(32)
        elif kind == "late_commit" and absent:
            self.next_ts = max(self.next_ts, d.commit_deadline + 1)
            sender = absent[0]
        elif kind == "copied" and absent and committed and self.next_ts <= d.commit_deadline:
            # An absent juror copies a committed one's commitment, and later tries to open it
            # with that juror's vote and salt: the commitment names its juror.
            copied = committed[pick % len(committed)]
            sender, commitment = absent[0], d.ballots[copied].commitment
            self.commit_as(sender, d.dispute_id, commitment)
            self.next_ts = max(self.next_ts, d.commit_deadline + 1)
            reveal, vote, salt = True, self.vote_of(note, note.characters[copied]), self.salt(d.dispute_id, copied)
        elif kind in ("early_reveal", "wrong_salt", "invalid_vote", "reveal_again") and committed:
            sender = committed[pick % len(committed)]
            reveal, vote, salt = True, self.vote_of(note, note.characters[sender]), self.salt(d.dispute_id, sender)
            if kind == "early_reveal":
                if self.next_ts > d.commit_deadline:
                    return
            else:
                self.next_ts = max(self.next_ts, d.commit_deadline + 1)
                if kind == "wrong_salt":
                    salt = keccak(salt)
                elif kind == "invalid_vote":
                    vote = (0, 3, 255)[pick % 3]
                elif kind == "reveal_again":
                    self.reveal_votes(d)
        elif kind == "late_reveal" and by[LAZY]:
            sender = by[LAZY][0]
            self.next_ts = max(self.next_ts, d.reveal_deadline + 1)
            reveal, vote, salt = True, self.vote_of(note, LAZY), self.salt(d.dispute_id, sender)
        elif kind == "not_committed" and absent:
            self.next_ts = max(self.next_ts, d.commit_deadline + 1)
            sender, reveal = absent[0], True
        if sender is None:
            return
        if reveal:
            self.reveal_as(sender, d.dispute_id, vote, salt)
        else:
            self.commit_as(sender, d.dispute_id, commitment)

    # ------------------------------------------------------------ the end of a dispute

    def check_ending(self, ending: court_ref.Ending, receipt) -> None:
        """A dispute ended: its events are the model's (outcome, votes, slash, every credit and
        penalty, to the wei), and the properties hold: an honest relayer is never slashed while
        most of its drawn jury is honest; a liar always is when honest jurors hold a majority of
        the seats."""
        court = self.w.court.lower()
        logs = [log for log in receipt.logs if log["address"].lower() == court]
        dispute_id = ending.dispute_id

        def of(topic):
            return [log for log in logs if log["topics"][0] == topic and int(log["topics"][1], 16) == dispute_id]

        def words(log):
            data = bytes.fromhex(log["data"][2:])
            return [int.from_bytes(data[i : i + 32], "big") for i in range(0, len(data), 32)]

        resolved = [words(log) for log in of(TOPIC_DISPUTE_RESOLVED)]
        want = [ending.outcome, ending.votes_match, ending.votes_wrong, ending.slashed]
        self.check(resolved == [want], f"dispute {dispute_id}: DisputeResolved {resolved}, the model {want}")
        credited = sorted(
            (to_checksum_address("0x" + log["topics"][2][-40:]), *words(log)) for log in of(TOPIC_CREDITED)
        )
        want_credits = sorted(ending.credits)
        self.check(credited == want_credits, f"dispute {dispute_id}: credited {credited}, the model {want_credits}")
        penalized = [(to_checksum_address("0x" + log["topics"][2][-40:]), words(log)[0]) for log in of(TOPIC_JUROR_PENALIZED)]
        self.check(penalized == ending.penalties, f"dispute {dispute_id}: penalized {penalized}, the model {ending.penalties}")

        d, note = self.court.disputes[dispute_id], self.notes[dispute_id]
        seats = self.court.terms_by_id[d.terms_id].jury_size
        honest = sum(1 for j in d.jurors if note.characters[j] == HONEST)
        if not note.lie and honest * 2 > len(d.jurors):
            cleared = ending.outcome != court_ref.OUTPUT_WRONG
            self.check(cleared, f"dispute {dispute_id}: an honest relayer was slashed by a mostly honest jury")
            self.count("honest relayer cleared by a mostly honest jury")
        if note.lie and honest > seats // 2:
            caught = ending.outcome == court_ref.OUTPUT_WRONG
            self.check(caught, f"dispute {dispute_id}: a liar escaped an honest majority of the seats")
            self.count("liar caught by an honest majority")
        self.count(f"{'lie' if note.lie else 'true output'}: {('', 'slashed', 'upheld', 'no decision')[ending.outcome]}")
        # An honest relayer slashed or penalized below the minimum bond tops its bond up at once
        # (before anything else it must do), so that it can settle what it holds.
        for account in {d.accused, *(j for j, _ in ending.penalties)}:
            r = self.hub.relayers.get(account)
            least = self.hub.min_bond_at(self.next_ts + 2)
            if account in self.honest and r is not None and r.unbond_at == 0 and r.bond < least:
                self.in_duty = True
                try:
                    self.ensure_tokens(account, least - r.bond)
                    self.relayer_top_up(account, least - r.bond)
                finally:
                    self.in_duty = False

    def relayer_top_up(self, account: str, amount: int) -> None:
        self.registry_send(lambda ts: self.hub.relayer_add_bond(account, amount, ts), account, "addBond", amount)

    def count(self, what: str) -> None:
        self.w.outcomes[("dispute", what)] = self.w.outcomes.get(("dispute", what), 0) + 1

    @precondition(lambda self: self.court.disputes)
    @rule(pick=PICK, what=st.sampled_from(["resolve", "draw"]), sender=ACTOR)
    def end_again(self, pick, what, sender):
        """A dispute that ended is never drawn or resolved again: it ends exactly once."""
        dispute_id = self.pick_dispute(pick, court_ref.RESOLVED)
        if what == "resolve":
            self.resolve(dispute_id, self.actor(sender))
        else:
            self.draw(dispute_id, self.actor(sender))

    def finish_disputes(self) -> None:
        """Draws and resolves every open dispute (jurors vote by character); each must end once."""
        for dispute_id, d in sorted(self.court.disputes.items()):
            if d.phase == court_ref.AWAITING_DRAW:
                self.to_draw_block(dispute_id)
                self.draw(dispute_id, self.w.owner)
        for dispute_id, d in sorted(self.court.disputes.items(), key=lambda kv: kv[1].reveal_deadline):
            if d.phase == court_ref.VOTING:
                self.next_ts = max(self.next_ts, d.reveal_deadline + 1)
                self.resolve(dispute_id, self.w.owner)
        for dispute_id, d in self.court.disputes.items():
            ended_once = d.phase == court_ref.RESOLVED and self.endings.get(dispute_id) == 1
            self.check(ended_once, f"dispute {dispute_id} did not end once")

    # ------------------------------------------------------------ payouts, the pool, jurors' bonds, terms

    @rule(who=PICK)
    def claim_payouts(self, who):
        """Someone owed claims its payouts (sometimes someone owed nothing)."""
        owed = sorted(a for a, amount in self.court.claimable.items() if amount)
        everyone = self.w.everyone
        sender = owed[who % len(owed)] if owed and who % 4 else everyone[who % len(everyone)]
        self.court_send(lambda ts: self.court.claim(sender), sender, "claim")

    @rule(who=PICK, sender=ACTOR)
    def sync_pool_weight(self, who, sender):
        """Anyone brings a relayer's pool weight up to date (nothing moves while a draw is pending)."""
        everyone = self.w.everyone
        target = everyone[who % len(everyone)]
        self.registry_send(lambda ts: self.hub.sync_weight(target, ts), self.actor(sender), "syncWeight", target)

    @rule(
        pick=PICK, how=st.sampled_from(["top_up", "top_up", "unbond", "withdraw", "withdraw_late", "register"]),
        amount=st.integers(1, 30 * TOKEN),
    )  # fmt: skip
    def juror_bond(self, pick, how, amount):
        """A juror tops up (mostly after penalties), starts leaving, tries to withdraw (refused
        while a dispute holds its bond, however long it waited), or bonds again."""
        juror = self.w.jurors[pick % len(self.w.jurors)][0]
        r = self.hub.relayers.get(juror)
        if r is None or how == "register":
            bond = self.hub.min_bond_at(self.next_ts) + amount
            self.ensure_tokens(juror, bond)
            self.registry_send(lambda ts: self.hub.relayer_register(juror, bond, ts), juror, "register", "http://juror", bond)
        elif how == "top_up":
            self.ensure_tokens(juror, amount)
            self.relayer_top_up(juror, amount)
        elif how == "unbond":
            self.registry_send(lambda ts: self.hub.relayer_begin_unbond(juror, ts), juror, "beginUnbond")
        else:
            if how == "withdraw_late" and r.unbond_at:
                self.next_ts = max(self.next_ts, r.unbond_at)
            self.registry_send(lambda ts: self.hub.relayer_withdraw_bond(juror, ts), juror, "withdrawBond")

    def other_terms(self, which: int, now: int) -> court_ref.Terms:
        """Valid terms (a jury of 3 with odd amounts; the deployment's) or terms breaking one rule."""
        t = court_ref.Terms(*self.w.params["court_terms"][0][0])  # the deployment's
        valid = court_ref.Terms(7 * TOKEN, 30 * TOKEN + 1, 3 * TOKEN + 7, 7 * TOKEN - 1, 2 * TOKEN + 3, 1_800, 300, 900, 2, 3)
        broken = {
            2: {"jury_size": 4}, 3: {"draw_delay": 1}, 4: {"commit_period": 0}, 5: {"challenge_bond": t.juror_reward - 1},
            6: {"slash_amount": t.challenger_reward + t.juror_reward},
            7: {"slash_amount": self.hub.min_bond_at(now) + 1},
            8: {"dispute_window": self.hub.unbond_delay},
        }  # fmt: skip
        if which in broken:
            return court_ref.Terms(**{**t.__dict__, **broken[which]})
        return valid if which in (0, 9) else t

    @rule(which=st.integers(0, 9), by_owner=st.sampled_from([True] * 5 + [False]), actor=ACTOR)
    def set_court_terms(self, which, by_owner, actor):
        """The owner changes the court's terms: they apply one dispute window later, never to
        open disputes; terms that would let lying pay are refused."""
        sender = self.w.owner if by_owner else self.actor(actor)
        terms = self.other_terms(which, self.next_ts)
        if terms.slash_amount >= 2**128:
            return
        self.court_send(lambda ts: self.court.set_terms(sender, terms, ts), sender, "setTerms", terms.as_tuple())

    @rule(
        to=st.sampled_from(["commit_deadline", "after_commit", "reveal_deadline", "after_reveal", "draw_block", "terms"]),
        pick=PICK,
    )  # fmt: skip
    def warp_disputes(self, to, pick):
        """Moves the next block's time to a dispute's boundary (or the chain to its draw block,
        or the time to a change of terms)."""
        open_ = [d for d in self.court.disputes.values() if d.phase == court_ref.VOTING]
        waiting = [d for d in self.court.disputes.values() if d.phase == court_ref.AWAITING_DRAW]
        if to == "draw_block" and waiting:
            self.to_draw_block(waiting[pick % len(waiting)].dispute_id)
        elif to == "terms" and self.court.next_terms_at:
            self.next_ts = max(self.next_ts, self.court.next_terms_at - 1 + pick % 2)
        elif open_:
            d = open_[pick % len(open_)]
            ts = {
                "commit_deadline": d.commit_deadline, "after_commit": d.commit_deadline + 1,
                "reveal_deadline": d.reveal_deadline, "after_reveal": d.reveal_deadline + 1,
            }.get(to, self.next_ts)  # fmt: skip
            self.next_ts = max(self.next_ts, ts)

    # ------------------------------------------------------------ the whole game in one step

    @precondition(lambda self: self.hub.models)
    @rule(
        actor=ACTOR, model=PICK, data=st.binary(max_size=8), signer=PICK, lie=st.booleans(), who=ACTOR,
        stop=st.sampled_from(["resolve", "resolve", "draw", "draw", "challenge"]), eager=st.booleans(),
        meddle=st.one_of(st.none(), VOTE_ERROR),
    )  # fmt: skip
    def serve_and_challenge(self, actor, model, data, signer, lie, who, stop, eager, meddle):
        """A call served (a lie half the time, never by an honest relayer), challenged at once,
        its jury drawn (an eager juror trying to reveal at once; someone meddling with the
        votes) and the dispute resolved after the reveal deadline, or left after the challenge
        or the draw for later steps."""
        before = len(self.court.disputes)
        signer = signer - signer % 4 if lie else signer | 1  # see attested_output
        self.call_and_serve(actor=actor, model=model, data=data, signer=signer, batch=False, others=[])
        settled = [r for r in self.hub.requests.values() if r.status == ref.FULFILLED]
        if not settled or settled[-1].settled_at != self.head_ts:
            return
        self.challenge_call(pick=1, who=who, forgery="none", edge=None, fund=True, target=settled[-1])
        if len(self.court.disputes) == before or stop == "challenge":
            return
        dispute_id = len(self.court.disputes)
        self.to_draw_block(dispute_id)
        self.draw(dispute_id, self.actor(who), eager=eager)
        d = self.court.disputes[dispute_id]
        if meddle is not None and d.phase == court_ref.VOTING:
            self.meddle(d, meddle, signer, who)
        if stop == "resolve" and d.phase == court_ref.VOTING:
            self.next_ts = max(self.next_ts, d.reveal_deadline + 1)
            self.resolve(dispute_id, self.actor(actor))

    @precondition(lambda self: self.hub.models)
    @rule(actor=ACTOR, model=PICK, data=st.binary(max_size=8), signer=PICK, who=ACTOR, meddle=VOTE_ERROR)
    def serve_and_challenge_2(self, actor, model, data, signer, who, meddle):
        """More weight on the whole game (a lie, always; votes meddled with)."""
        self.serve_and_challenge(
            actor=actor, model=model, data=data, signer=signer, lie=True, who=who, stop="resolve", eager=True, meddle=meddle
        )  # fmt: skip
