"""A replay of what the economic state machine found at the edge of the 160-bit amounts: a fast
call's refund is its receipt's average price per call, which can pass 2**128 (one receipt may pay
up to 2**160 - 1). The court stored it in 128 bits by a plain cast, so a refund of 2**128 + 5 was
kept as 5: a relayer caught lying about such a call refunded its caller 5 base units and kept
the rest of its bond. The refund is capped at 2**128 - 1 now, above any bond (bonds are stored
in 128 bits too), so the caller gets the whole slash as docs/disputes.md says.

Reachable only with a token supply above 2**128 base units: the dev chains' open-mint HubToken.
"""

from __future__ import annotations

from tests.support.disputes import court, juror_accounts, jury_pool, kit  # noqa: F401 (fixtures)

VOTE_OUTPUT_WRONG = 2


def test_a_refund_above_128_bits_refunds_the_whole_bond(
    kit, court, relayers, bond, jury_pool, juror_accounts, caller, relayer, stranger
):
    pool = jury_pool(5)
    bond(relayer)
    bonded = relayers.relayerInfo(relayer)[1]
    amount = 2**128 + 5  # one call, paid in one receipt
    call = kit.settle_fast(caller, relayer, kit.model(price=0), 1, amount, output=b'{"label":[2]}')
    dispute_id = kit.challenge_fast(call, stranger)
    assert court.getDispute(dispute_id).refund == 2**128 - 1  # more than any bond holds

    jurors = {a.address: a for a in pool}
    kit.vote(dispute_id, {jurors[j]: VOTE_OUTPUT_WRONG for j in kit.draw(dispute_id, stranger)})
    court.resolve(dispute_id, sender=stranger)

    assert relayers.relayerInfo(relayer)[1] == 0
    assert court.claimable(caller) == bonded  # the refund takes the whole slash, as far as it goes
