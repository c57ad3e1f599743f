"""No money is created, lost or paid twice, and nobody who follows the rules loses: a Hypothesis
state machine drives the deployed contracts on anvil through random sequences of everything users,
relayers, attackers and the owner can do, and after every step compares the whole on-chain state
with the reference model (reference.py).

After every step:
- conservation, from the chain's state alone: the escrow's token balance equals the free credit
  of every account plus every reservation plus the prices locked by pending requests plus unpaid
  earnings, exactly; the relayer registry's token balance equals the sum of bonds;
- every token balance, credit, reservation, receipt signer key, earning, bond, request (and its
  designated relayer), model, payee schedule, fee schedule, minimum bond schedule and model stat
  equals the model's;
- every request is in exactly one state, and ends at most once (one terminal event each);
- each settlement's parts sum to its price by the rounding rule (the model's split, checked by
  the earnings deltas), and a refund or rejection returns exactly the locked price; a call settles
  under the fees and explicit payees in force (or announced) when it was paid for, within the
  notice (reference.TermsChanged);
- off-chain receipts: every channel's settled totals and channel price, every model's price notice
  and receipt terms equal the model's; a receipt never pays twice: a channel's settled calls only
  grow, its amount never shrinks, it equals the newest ReceiptSettled of the channel, and the
  increases paid add up to it exactly; every item of settleReceipts settles or is skipped for
  exactly the reason the model gives, in the escrow's check order (1-8);
- honest relayers (issue 10): a relayer that accepts a receipt only within its caller's
  reservation minus what is being released minus what it has not settled of that caller, only
  signed by the caller or its signer key in force, at the channel price, never holds more
  unsettled than the reservation backs, and every receipt it settles before the receipt's
  deadline, the reservation's release, a signer change or a minimum bond rise settles in full,
  however the price changed meanwhile. It is forced to settle at the last seconds each time one
  of these comes (honest_duties, before every transaction);
- disputes (issue 13, rules_disputes.py against reference_court.py): the court's balance equals
  every unclaimed payout plus the challenge bonds of open disputes (so challenge bonds, slashes,
  refunds, rewards and penalties are all accounted for, to the wei); every dispute, ballot,
  court payout, pool weight, bond hold, the pool's total and pending draws and the court's terms
  equal the model's, and each ending's events are the model's; every dispute ends exactly once
  (one DisputeResolved each; all are drawn and resolved at the end of each example); an honest
  relayer is never slashed while most of its drawn jury is honest, and a lying one always is
  when honest jurors hold a majority of the seats.

Adversaries: self-dealing accounts that are caller, uploader and relayer at once (receipts to
their own model naming themselves or an honest relayer, submitted by themselves, earnings taken
at once, releases and withdrawals racing the honest relayer); one caller served by several
relayers; contract-wallet callers (TestWallet) whose receipt signer key is changed mid-flight;
an owner changing fees, the minimum bond and a model owner the payees between payment and
settlement. At the end of every example the pending calls are refunded to their callers in full
after their deadline and honest relayers settle all they hold.

Jurors: six relayers bonded in the base state (anvil impersonates them) and the actors drawn,
each voting by a fixed character (honest, liar, lazy, absent); they reveal before a reveal
deadline passes (juror_duties, before every transaction). The examples start under terms the
owner set in the base state (rules_disputes.BASE_TERMS: a jury of 3, odd amounts); the
deployment's jury of 5 comes back through a change of terms. A jury depends on anvil's
prevrandao, which is random per block: a replayed example may draw another jury.

Callers sign receipts with anvil's dev keys; forged, foreign-domain, malleable, expired, replayed,
older, underpriced, over-reservation, wrong-submitter, next-key and out-of-range receipts are mixed
into batches with valid ones. Price rises under notice, releases, signer changes and the
scheduled terms are hit at their boundaries (t - 1, t).

Every transaction is mined at a timestamp the test chooses, so deadlines and delays are hit
exactly. Each example starts from the same chain snapshot.

Profiles: see conftest.py (MODELHUB_HYPOTHESIS_PROFILE=long for the soak run).
"""

from __future__ import annotations

from eth_utils import keccak
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from tests.support.cast import DEV_KEYS
from .chain_driver import Abi, Rpc
from .invariants import Invariants
from .machine_base import MAX_UINT256, MachineBase, World
from .reference_court import vote_commitment
from .rules_adversaries import AdversaryRules
from .rules_credit import CreditRules
from .rules_disputes import BASE_TERMS, JUROR_CHARACTERS, DisputeRules
from .rules_honest_relayers import HonestRelayerRules
from .rules_models import ModelRules
from .rules_owner import OwnerRules
from .rules_receipts import ReceiptRules
from .rules_relayers import RelayerRules
from .rules_requests import RequestRules
from .rules_reservations import ReservationRules
from .rules_time import TimeRules
from .rules_weights import WeightRules
from .signing import Attestation, Receipt, Signer


# ---------------------------------------------------------------- the machine


class EconomicsMachine(
    ModelRules,
    CreditRules,
    RequestRules,
    TimeRules,
    RelayerRules,
    OwnerRules,
    ReservationRules,
    ReceiptRules,
    HonestRelayerRules,
    AdversaryRules,
    WeightRules,
    DisputeRules,
    Invariants,
    MachineBase,
):
    """Every rule group (rules_*.py) and the check after every step (invariants.py) on the shared
    base (machine_base.py). A `@reproduce_failure(...)` blob goes on this class."""


# ---------------------------------------------------------------- the test


def _container(project, name: str):
    """A compiled contract of the project, or None when this copy of the project lacks it."""
    try:
        return getattr(project, name)
    except AttributeError:
        return None


JURORS = len(JUROR_CHARACTERS)  # relayers bonded in the base state that only sit on juries


def test_no_money_created_lost_or_paid_twice(
    project, chain, accounts, deployment, token, registry, relayers, escrow, deployer, treasury
):
    rpc = Rpc(chain.provider.uri)
    court = project.DisputeCourt.at(deployment.dispute_court)
    # Contract-wallet callers: receipts of a contract are valid only by the signer key it registered.
    wallet_type = _container(project, "TestWallet")
    wallets = {}
    if wallet_type is not None:
        wallets = {wallet_type.deploy(accounts[i].address, sender=accounts[i]).address: accounts[i].address for i in (1, 2)}
    else:
        print("\neconomics: no TestWallet in this build: no contract-wallet callers")
    abi = {
        "token": Abi(token.contract_type),
        "registry": Abi(registry.contract_type),
        "relayers": Abi(relayers.contract_type),
        "escrow": Abi(escrow.contract_type),
        "court": Abi(court.contract_type),
    }
    if wallet_type is not None:
        abi["wallet"] = Abi(wallet_type.contract_type)
    for a in abi.values():
        rpc.register_errors(a)
    owner = deployer.address
    actors = [accounts[i].address for i in range(1, 10)]
    assert treasury.address in actors
    keys = {a.address: a.private_key for a in accounts}
    signers = {signer.address: signer for signer in map(Signer, DEV_KEYS)}
    assert all(a in signers for a in [owner, *actors]), "the test accounts are anvil's dev accounts"
    # The inlined EIP-712 digests are the escrow's.
    probe = Receipt(actors[0], actors[1], 3, 4, 5, 6)
    assert escrow.hashReceipt(probe.as_tuple()) == probe.digest(chain.chain_id, escrow.address)
    att = Attestation(7, 1, 2, keccak(b"in"), keccak(b"out"))
    assert escrow.hashAttestation(att.as_tuple()) == att.digest(chain.chain_id, escrow.address)
    assert court.voteCommitment(3, actors[0], 2, keccak(b"s")) == vote_commitment(3, actors[0], 2, keccak(b"s"))

    # The base every example starts from: unlimited allowances for the escrow, the registry and
    # the court; and the jurors, bonded relayers that send transactions (anvil impersonates them).
    for sender in [owner, *actors]:
        for spender in (escrow.address, relayers.address, court.address):
            receipt = rpc.send(sender, token.address, abi["token"]["approve"], spender, MAX_UINT256)
            assert receipt.ok
    assert registry.modelCount() == 0, "the session deployment is expected to be fresh"
    assert tuple(relayers.poolState()) == (0, 0) and court.disputeCount() == 0, "the session deployment is expected to be fresh"
    # The terms the examples start under (rules_disputes.BASE_TERMS), in force after their notice.
    deployed_terms = tuple(court.terms())
    assert rpc.send(owner, court.address, abi["court"]["setTerms"], BASE_TERMS.as_tuple()).ok
    terms_at = int(court.pendingTerms()[1])
    rpc.set_next_timestamp(terms_at)
    rpc.call_raw("evm_mine", [])
    assert tuple(court.terms()) == BASE_TERMS.as_tuple()
    min_bond = relayers.minBond()
    jurors = []
    for i in range(JURORS):
        juror = Signer(keccak(b"economics juror %d" % i)).address
        rpc.call_raw("anvil_impersonateAccount", [juror])
        bond = min_bond + (i + 3) * 7 * 10**18 + i  # room for several penalties; odd weights
        for fn, to, args in [("mint", token.address, (juror, bond)), ("approve", token.address, (relayers.address, MAX_UINT256)),
                             ("register", relayers.address, ("http://juror", bond))]:  # fmt: skip
            assert rpc.send(juror, to, abi["token" if to == token.address else "relayers"][fn], *args).ok
        jurors.append((juror, bond))
    base_tokens = {
        a: token.balanceOf(a)
        for a in [owner, *actors, *wallets, *(j for j, _ in jurors), escrow.address, relayers.address, court.address]
    }

    world = World(
        rpc=rpc,
        chain=chain,
        token=token.address,
        registry=registry.address,
        relayers=relayers.address,
        escrow=escrow.address,
        court=court.address,
        owner=owner,
        actors=actors,
        keys=keys,
        signers=signers,
        abi=abi,
        wallets=wallets,
        jurors=jurors,
        chain_id=chain.chain_id,
        params=dict(
            treasury=escrow.treasury(),
            protocol_bps=escrow.protocolFeeBps(),
            relayer_bps=escrow.relayerFeeBps(),
            timeout=escrow.requestTimeout(),
            min_bond=relayers.minBond(),
            unbond_delay=relayers.unbondDelay(),
            withdrawal_delay=escrow.withdrawalDelay(),
            price_notice_period=registry.priceNoticePeriod(),
            court_terms=([deployed_terms, BASE_TERMS.as_tuple()], terms_at),
        ),
        base_tokens=base_tokens,
    )
    EconomicsMachine.world = world
    try:
        run_state_machine_as_test(EconomicsMachine, settings=settings())
    finally:
        if world.snapshot is not None:
            chain.restore(world.snapshot)
        for juror, _ in jurors:
            rpc.call_raw("anvil_stopImpersonatingAccount", [juror])
        if world.first_failure:
            print(f"\neconomics: {world.first_failure}")
        print(
            f"\neconomics: {world.examples} examples, {world.checks - world.examples} steps,"
            f" {world.steps} transactions, {world.checks} full-state checks"
        )
        lengths = sorted(world.steps_per_example) or [0]
        full = settings().stateful_step_count - 1  # Hypothesis counts the setup as a step
        print(
            f"  random steps per example (after the setup): min {lengths[0]}, median {lengths[len(lengths) // 2]},"
            f" max {lengths[-1]}; {sum(1 for n in lengths if n >= full)} of {len(lengths)} examples ran all {full}"
        )
        for (fn, outcome), n in sorted(world.outcomes.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
            print(f"  {fn:22s} {outcome:42s} {n}")
