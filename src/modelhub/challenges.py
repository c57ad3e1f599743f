"""Challenges that cost nothing when the court would refuse them: each is checked here and then
rehearsed against the court itself (an eth_call) before the bond is approved and it is sent.

`Hub.challenge_request` / `Hub.challenge_fast_call` send at once (an approval first); these
wrap them for the CLI and spot checks, so a refusal is one error and no gas spent.
"""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address

from . import errors as e
from .kept import KeptCall, KeptCallError
from .results import DisputeCase

__all__ = ["challenge_kept", "challenge_request", "kept_call_problem"]


def challenge_request(hub: Any, request_id: int, output: bytes | None = None) -> DisputeCase:
    """Challenges on-chain call `request_id` with the output bytes its relayer delivered
    (`output`; default: fetched from that relayer and checked against the settled hash)."""
    facts = hub.settled_call(request_id)
    call = hub.requested_call(request_id)
    if output is None:
        output = hub.fetch_output(request_id).output_bytes
    output = bytes(output)
    _rehearse(hub, hub.court.challengeRequest, facts.as_tuple(), call.input, output)
    return hub.challenge_request(request_id, output)


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
    _rehearse(hub, hub.court.challengeReceipt, kept.receipt.as_tuple(), kept.receipt_signature,
              kept.attestation.as_tuple(), kept.attestation_signature, kept.input, kept.output)
    return hub.challenge_fast_call(*kept.challenge_args())


def _rehearse(hub: Any, method: Any, *args: Any) -> None:
    """Runs a challenge as an eth_call from the challenger: the court's own checks, for free.
    The court takes the bond last, so a revert for want of tokens or allowance (not approved
    yet) means every check passed; the hub then approves the bond, or says it is short."""
    try:
        hub._simulate(method, *args)
    except e.ContractRevertError as error:
        if not error.error_name.startswith(("ERC20", "ExactTransfer_")):
            raise
