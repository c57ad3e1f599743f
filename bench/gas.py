"""Gas of every user-facing transaction, measured on a fresh anvil deployment.

Run with `make bench-gas`. Prints a Markdown table (the README's gas table) and writes it, with
the raw figures, to bench/results/gas.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ape import accounts, chain, networks

from modelhub.deployments import DeployParams, deploy
from modelhub.devchain import Anvil
from modelhub.typed_data import VOTE_OUTPUT_WRONG, Attestation, Receipt, SettledCall, vote_commitment
from modelhub.typed_data import sign as sign_attestation

TOKEN = 10**18
PRICE = 10**15
SMALL_INPUT = b'{"X":[[5.1,3.5,1.4,0.2]]}'  # the iris example's input: 26 bytes
LIE = b'{"label":[2]}'  # a made-up output of that call (the iris model says 0)
# requestInference: under 110,000 in the first version, under 90,000 since the caller's slot went
# (it is part of the request id); the physical floor is two fresh slots.
TARGETS = {"requestInference": 90_000, "fulfillBatch, per item (100 items)": 20_000}
# What the issue quotes for a straightforward implementation, as the baseline of each target.
BASELINES = {"requestInference": 116_000, "fulfillBatch, per item (100 items)": 31_000}


def main() -> int:
    from ape import project

    # A chain of its own on a free port, so no other anvil (say a test run) is measured instead.
    with Anvil() as anvil, networks.parse_network_choice(anvil.url):
        deployer, uploader, caller, relayer, treasury = accounts.test_accounts[:5]
        d = deploy(deployer, treasury=treasury.address, params=DeployParams())
        token = project.HubToken.at(d.token)
        registry = project.ModelRegistry.at(d.model_registry)
        relayers = project.RelayerRegistry.at(d.relayer_registry)
        escrow = project.InferenceEscrow.at(d.inference_escrow)
        rows: list[tuple[str, int, str]] = []

        def record(name: str, gas: int, note: str = "") -> None:
            rows.append((name, gas, note))

        tx = registry.registerModel("iris", b"\x11" * 32, "ipfs://card", PRICE, sender=uploader)
        record("registerModel", tx.gas_used, "name and model-card URI of 4 and 11 bytes")
        model_id = tx.return_value

        token.mint(caller, 1_000 * TOKEN, sender=caller)
        token.approve(escrow, 2**256 - 1, sender=caller)
        tx = escrow.deposit(10 * TOKEN, sender=caller)
        record("deposit (first)", tx.gas_used, "caller's credit slot created")
        tx = escrow.deposit(10 * TOKEN, sender=caller)
        record("deposit", tx.gas_used, "caller already has credit")

        token.mint(relayer, 100 * TOKEN, sender=relayer)
        token.approve(relayers, 100 * TOKEN, sender=relayer)
        tx = relayers.register("http://127.0.0.1:8700", 100 * TOKEN, sender=relayer)
        record("RelayerRegistry.register", tx.gas_used, "bond of 100 tOPG")

        def request() -> tuple[int, int]:
            tx = escrow.requestInference(model_id, 0, SMALL_INPUT, PRICE, sender=caller)
            return tx.return_value, tx.gas_used

        def attest(request_id: int) -> tuple[tuple, bytes]:
            att = Attestation(request_id, model_id, 1, _keccak(SMALL_INPUT), _keccak(b'{"label":[0]}'))
            return att.as_tuple(), sign_attestation(relayer.private_key, att, chain.chain_id, escrow.address)

        # The first settlement ever creates the payee, relayer, treasury and stats slots; the
        # figures below are for a hub already in use (those slots non-zero).
        request_id, first_request_gas = request()
        tx = escrow.fulfill(*attest(request_id), sender=relayer)
        record("fulfill (first settlement of a model)", tx.gas_used, "earnings and stats slots created")

        request_id, gas = request()
        record("requestInference", gas, f"{len(SMALL_INPUT)}-byte input, price locked from existing credit")
        tx = escrow.fulfill(*attest(request_id), sender=relayer)
        record("fulfill", tx.gas_used, "one attestation")

        for size in (1, 10, 100):
            ids = [request()[0] for _ in range(size)]
            atts, sigs = zip(*(attest(i) for i in ids))
            tx = escrow.fulfillBatch(list(atts), list(sigs), sender=relayer)
            assert len(tx.events.filter(escrow.InferenceFulfilled)) == size
            record(f"fulfillBatch, per item ({size} item{'s' if size > 1 else ''})", tx.gas_used // size,
                   f"total {tx.gas_used:,}")

        tx = escrow.requestInferenceVia(model_id, 0, SMALL_INPUT, PRICE, relayer, sender=caller)
        record("requestInferenceVia", tx.gas_used, "designated to one relayer (a third slot and an event)")
        tx = escrow.reject(tx.return_value, 1, sender=relayer)
        record("reject", tx.gas_used, "by the designated relayer; price back to credit")

        request_id, _ = request()
        anvil.advance_time(DeployParams().request_timeout + 1)
        tx = escrow.refund(request_id, sender=caller)
        record("refund", tx.gas_used, "after the deadline")

        # Fast calls: credit set aside for one relayer, released after the delay.
        tx = escrow.reserve(relayer, TOKEN, sender=caller)
        record("reserve (first)", tx.gas_used, "reservation slot created")
        tx = escrow.reserve(relayer, TOKEN, sender=caller)
        record("reserve", tx.gas_used, "adds to a reservation")
        tx = escrow.reserveFor(uploader, relayer, TOKEN, sender=caller)
        record("reserveFor", tx.gas_used, "deposit and reserve for another account in one step")
        tx = escrow.announceRelease(relayer, TOKEN, sender=caller)
        record("announceRelease", tx.gas_used, "")
        anvil.advance_time(DeployParams().withdrawal_delay)
        tx = escrow.release(relayer, sender=caller)
        record("release", tx.gas_used, "after withdrawalDelay; back to free credit")
        tx = escrow.withdraw(TOKEN, sender=caller)
        record("withdraw", tx.gas_used, "free credit, one step")
        tx = escrow.setReceiptSigner(uploader, sender=caller)
        record("setReceiptSigner (first)", tx.gas_used, "applies at once")
        tx = escrow.setReceiptSigner(treasury, sender=caller)
        record("setReceiptSigner (replace)", tx.gas_used, "applies after withdrawalDelay")

        tx = escrow.withdrawEarnings(sender=uploader)
        record("withdrawEarnings", tx.gas_used, "payee pulls all earnings")

        _disputes(record, anvil, project, d, token, relayers, escrow, model_id, caller, relayer, uploader)

    print("| transaction | gas | note |")
    print("|---|---:|---|")
    for name, gas, note in rows:
        target = TARGETS.get(name)
        if target:
            note = f"{note}; target < {target:,}, baseline {BASELINES[name]:,}: {gas / BASELINES[name]:.2f}x"
        print(f"| {name} | {gas:,} | {note} |")

    out = Path(__file__).parent / "results" / "gas.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps([{"transaction": n, "gas": g, "note": t} for n, g, t in rows], indent=2) + "\n")
    missed = [n for n, g, _ in rows if n in TARGETS and g >= TARGETS[n]]
    if missed:
        print(f"\nabove target: {', '.join(missed)}", file=sys.stderr)
    return 0


def _disputes(record, anvil, project, d, token, relayers, escrow, model_id, caller, relayer, challenger) -> None:
    """The dispute game's transactions: a lie caught on chain and by receipt, a jury of five."""
    court = project.DisputeCourt.at(d.dispute_court)
    params = DeployParams()
    jurors = accounts.test_accounts[5:10]
    for juror in jurors:
        token.mint(juror, params.min_bond, sender=juror)
        token.approve(relayers, params.min_bond, sender=juror)
        tx = relayers.register("http://127.0.0.1:8701", params.min_bond, sender=juror)
    record("RelayerRegistry.register (6th relayer)", tx.gas_used, "bond and a slot in the jury pool")

    request_id = escrow.requestInference(model_id, 0, SMALL_INPUT, PRICE, sender=caller).return_value
    att = Attestation(request_id, model_id, 1, _keccak(SMALL_INPUT), _keccak(LIE))
    tx = escrow.fulfill(att.as_tuple(), sign_attestation(relayer.private_key, att, chain.chain_id, escrow.address),
                        sender=relayer)
    facts = SettledCall(request_id, model_id, 1, PRICE, att.input_hash, att.output_hash, relayer.address, tx.timestamp)
    token.mint(challenger, 10 * params.challenge_bond, sender=challenger)
    token.approve(court, 10 * params.challenge_bond, sender=challenger)
    tx = court.challengeRequest(facts.as_tuple(), SMALL_INPUT, LIE, sender=challenger)
    record("DisputeCourt.challengeRequest", tx.gas_used, f"an on-chain call; {len(SMALL_INPUT)}-byte input in the event")
    dispute_id = tx.events.filter(court.DisputeOpened)[0].disputeId

    receipt = Receipt(caller.address, relayer.address, model_id, 1, PRICE, chain.pending_timestamp + 86_400)
    receipt_signature = sign_attestation(caller.private_key, receipt, chain.chain_id, escrow.address)
    escrow.reserve(relayer, PRICE, sender=caller)
    escrow.settleReceipts([receipt.as_tuple()], [receipt_signature], sender=relayer)
    fast = Attestation(int.from_bytes(escrow.hashReceipt(receipt.as_tuple()), "big"), model_id, 1,
                       _keccak(SMALL_INPUT), _keccak(LIE))
    tx = court.challengeReceipt(receipt.as_tuple(), receipt_signature, fast.as_tuple(),
                                sign_attestation(relayer.private_key, fast, chain.chain_id, escrow.address),
                                SMALL_INPUT, LIE, sender=challenger)
    record("DisputeCourt.challengeReceipt", tx.gas_used, "a fast call: two signatures checked")

    for _ in range(params.draw_delay):
        anvil.advance_time(1)  # a block each
    tx = court.drawJury(dispute_id, sender=challenger, gas=1_000_000)  # its gas depends on the block's randomness
    record("DisputeCourt.drawJury", tx.gas_used, f"{params.jury_size} jurors drawn from the 5 eligible relayers, their bonds held")
    salt = b"\x01" * 32
    by_address = {a.address: a for a in jurors}
    drawn = [by_address[j] for j in court.getDispute(dispute_id).jurors]
    for juror in drawn:
        tx = court.commitVote(dispute_id, vote_commitment(dispute_id, juror.address, VOTE_OUTPUT_WRONG, salt),
                              sender=juror)
    record("DisputeCourt.commitVote", tx.gas_used, "")
    anvil.advance_time(params.commit_period + 1)
    for juror in drawn:
        tx = court.revealVote(dispute_id, VOTE_OUTPUT_WRONG, salt, sender=juror)
    record("DisputeCourt.revealVote", tx.gas_used, "")
    tx = court.resolve(dispute_id, sender=challenger)
    record("DisputeCourt.resolve (slashed)", tx.gas_used, "5 of 5 against the output: slash, refund, rewards, holds released")
    tx = court.claim(sender=challenger)
    record("DisputeCourt.claim", tx.gas_used, "bond and reward back")


def _keccak(data: bytes) -> bytes:
    from eth_utils import keccak

    return keccak(data)


if __name__ == "__main__":
    sys.exit(main())
