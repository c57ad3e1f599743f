"""Challenges of a kept fast call (kept.py): the file's own checks against this deployment, with
a reason a person can act on, before `Hub.challenge_fast_call` rehearses it against the court.

Every `Hub.challenge_*` rehearses as an eth_call before approving the bond, so a refusal costs
nothing; what this adds is the kept call's own problems (another chain, a changed file).
"""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address

from .kept import KeptCall, KeptCallError
from .results import DisputeCase

__all__ = ["challenge_kept", "kept_call_problem"]


def kept_call_problem(hub: Any, kept: KeptCall) -> str | None:
    """Why the court would refuse `kept` as this hub's deployment holds things now, as far as can
    be told without the chain's channel (None: nothing found)."""
    deployment = hub.deployment
    if (kept.chain_id, kept.escrow) != (deployment.chain_id, to_checksum_address(deployment.inference_escrow)):
        return (f"it was made on chain {kept.chain_id} with escrow {kept.escrow}, not on this deployment "
                f"(chain {deployment.chain_id}, escrow {deployment.inference_escrow})")
    signer = hub.receipt_signer(kept.receipt.caller).signer
    return kept.problem(frozenset({signer} if signer else ()))


def challenge_kept(hub: Any, kept: KeptCall) -> DisputeCase:
    """Challenges the fast call `kept` (its receipt must have settled on chain)."""
    problem = kept_call_problem(hub, kept)
    if problem:
        raise KeptCallError(f"the kept call {kept.call_hex} cannot be challenged: {problem}; the court "
                            "would refuse it, so nothing was sent (was the file changed after it was kept?)")
    return hub.challenge_fast_call(*kept.challenge_args())

