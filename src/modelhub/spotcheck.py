"""Spot checks: a caller re-runs a random share of its calls locally, with the version's
registered file, and judges each attested output by `verdict.judge` (the jurors' rule). An
output found wrong is challenged: an on-chain call at once, a fast call once its receipt has
settled on chain (the court requires it); until then it waits, in memory and as a kept call.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from . import errors as e
from .challenges import challenge_kept
from .kept import KeptCall, KeptCallError, KeptCalls
from .results import DisputeCase
from .verdict import TolerancePolicy, Verdict, judge

__all__ = ["SpotCheck", "SpotCheckCounts", "SpotChecker"]

# Refusals after which a wrong call is no longer worth challenging, besides a kept call the court
# would refuse (the others, such as a bond the challenger cannot pay yet, are tried again later).
_FINAL_REFUSALS = ("DisputeCourt_AlreadyDisputed", "DisputeCourt_WindowClosed", "DisputeCourt_ReceiptMismatch",
                   "DisputeCourt_InvalidReceiptSignature", "DisputeCourt_InvalidAttestationSignature",
                   "DisputeCourt_InputMismatch", "DisputeCourt_OutputMismatch")


@dataclass(frozen=True)
class SpotCheck:
    """What the spot check of one call found: a verdict (None: none could be reached, `note`
    says why), and for a wrong output the dispute opened, or why none is open yet."""

    verdict: Verdict | None
    note: str = ""
    dispute: DisputeCase | None = None
    waiting: bool = False  # a wrong fast call waiting for its receipt to settle
    error: e.ModelHubError | None = field(default=None, compare=False)  # why a wrong call was not challenged

    @property
    def wrong(self) -> bool:
        return self.verdict is not None and not self.verdict.matches


@dataclass
class SpotCheckCounts:
    """What a checker did so far, for the caller to see."""

    calls: int = 0  # calls it saw
    checked: int = 0  # re-run and judged
    matched: int = 0
    wrong: int = 0
    no_verdict: int = 0  # chosen, but the file could not be had or the run timed out
    disputed: int = 0  # disputes opened on wrong outputs
    waiting: int = 0  # wrong fast calls whose receipt has not settled yet
    problems: list[str] = field(default_factory=list)  # why wrong calls are not challenged (yet)

    def note(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)

    def as_json(self) -> dict[str, Any]:
        return {"calls": self.calls, "checked": self.checked, "matched": self.matched, "wrong": self.wrong,
                "noVerdict": self.no_verdict, "disputed": self.disputed, "waiting": self.waiting,
                "problems": list(self.problems)}


class SpotChecker:
    """Checks a share `share` (0 to 1) of the calls shown to it, chosen at random from the
    operating system's randomness (a relayer cannot tell which calls will be checked), with
    `policy` as the tolerance (default: the jurors' default; give the model card's tolerance
    for a model that declares one, or a check may find wrong what jurors accept). Wrong fast
    calls are kept in `kept` (a KeptCalls store) so that a later process can challenge them."""

    def __init__(self, hub: Any, share: float, policy: TolerancePolicy | None = None,
                 kept: KeptCalls | None = None) -> None:
        share = float(share)
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"a spot-check share is between 0 and 1 (0.1: one call in ten), not {share:g}")
        self.hub = hub
        self.share = share
        self.policy = policy or TolerancePolicy()
        self.kept = kept
        self.counts = SpotCheckCounts()
        self._pending: dict[int, KeptCall] = {}
        # Why each waiting call was last not challenged although settled (a bond not at hand...).
        self.blocked: dict[int, e.ModelHubError] = {}
        self._random = random.SystemRandom()

    # ------------------------------------------------------------------ judging

    def chosen(self) -> bool:
        """Whether the next call is to be checked."""
        self.counts.calls += 1
        return self.share > 0 and (self.share >= 1 or self._random.random() < self.share)

    def judge(self, model_id: int, version: int, input_bytes: bytes, output: bytes,
              sources: tuple[str, ...] = ()) -> Verdict | str:
        """The verdict on `output` as the answer of `model_id`@`version` on `input_bytes`, or,
        when none can be reached, why (a string). The file comes from the hub's model cache,
        else from `sources` (relayer URLs) and the registered relayers."""
        hub = self.hub
        digest = hub.version_digest(model_id, version)
        try:
            hub._inputs().model(digest, lambda: hub._cached_file(model_id, version, sources))
        except e.ModelFileError:
            pass  # not a file a relayer could run: `judge` finds every attested output of it wrong
        except e.ModelHubError as error:
            return f"the model file could not be had ({error})"
        try:
            verdict = judge(hub._inputs().runtime, digest, input_bytes, output, self.policy)
        except e.ModelHubError as error:  # a time-out, a file gone meanwhile: no verdict
            return f"no verdict ({error})"
        return verdict

    def _judged(self, verdict: Verdict | str) -> Verdict | None:
        if isinstance(verdict, str):
            self.counts.no_verdict += 1
            return None
        self.counts.checked += 1
        if verdict.matches:
            self.counts.matched += 1
        else:
            self.counts.wrong += 1
        return verdict

    # ------------------------------------------------------------------ on-chain calls

    def check_request(self, result: Any) -> SpotCheck | None:
        """Checks an on-chain call (an InferenceResult) if chosen; a wrong output is challenged
        at once. None when the call was not chosen."""
        if not self.chosen():
            return None
        request, verified = result.request, result.verified
        call = self.hub.requested_call(request.id)
        found = self.judge(call.model_id, call.version, call.input, verified.output_bytes, (verified.relayer_url,))
        verdict = self._judged(found)
        if verdict is None:
            return SpotCheck(None, str(found))
        if verdict.matches:
            return SpotCheck(verdict, verdict.reason)
        try:
            case = self.hub.challenge_request(request.id, verified.output_bytes)
        except e.ModelHubError as error:
            self.counts.note(f"request {request.id} was not challenged: {error}")
            return SpotCheck(verdict, f"not challenged: {error}", error=error)
        self.counts.disputed += 1
        return SpotCheck(verdict, f"challenged in dispute {case.dispute_id}", case)

    # ------------------------------------------------------------------ fast calls

    def check_fast(self, result: Any, chain_id: int, escrow: str) -> SpotCheck | None:
        """Checks a fast call (a FastCallResult) if chosen; a wrong output waits for its receipt
        to settle (`challenge_settled`), kept meanwhile. None when not chosen."""
        if not self.chosen():
            return None
        found = self.judge(result.attestation.model_id, result.version, result.input_bytes, result.output_bytes,
                           (result.relayer_url,))
        verdict = self._judged(found)
        if verdict is None:
            return SpotCheck(None, str(found))
        if verdict.matches:
            return SpotCheck(verdict, verdict.reason)
        self.wait(KeptCall.of(result, chain_id, escrow, wrong=verdict.reason))
        return SpotCheck(verdict, "to be challenged once the relayer settles its receipt", waiting=True)

    def wait(self, kept: KeptCall) -> None:
        """Adds a wrong fast call to those challenged once settled (and keeps it, if a store)."""
        if kept.call_id in self._pending or kept.dispute_id:
            return
        self._pending[kept.call_id] = kept
        if self.kept is not None:
            self.kept.save(kept)
        self.counts.waiting = len(self._pending)

    @property
    def waiting(self) -> list[KeptCall]:
        """Wrong fast calls not challenged yet, oldest first."""
        return list(self._pending.values())

    def first_waiting_calls(self) -> int | None:
        """The fewest receipt calls among the waiting (a channel settled that far may open one)."""
        return min((kept.receipt.calls for kept in self._pending.values()), default=None)

    def challenge_settled(self) -> list[DisputeCase]:
        """Challenges every waiting call whose receipt its channel has settled on chain; returns
        the disputes opened. Calls not settled yet, or whose bond the caller cannot pay yet,
        keep waiting; those the court refuses for good are dropped (said in `counts.problems`)."""
        opened = []
        settled: dict[tuple[str, str, int], int] = {}
        for kept in self.waiting:
            channel = kept.channel
            if channel not in settled:
                settled[channel] = self.hub.channel(*channel)[0]
            if settled[channel] < kept.receipt.calls:
                continue
            try:
                case = challenge_kept(self.hub, kept)
            except e.ModelHubError as error:
                if isinstance(error, KeptCallError) or getattr(error, "error_name", "") in _FINAL_REFUSALS:
                    self._done(kept, kept.with_changes(refused=str(error)))
                    self.counts.note(f"call {kept.call_hex} cannot be challenged: {error}")
                else:
                    self.blocked[kept.call_id] = error
                    self.counts.note(f"call {kept.call_hex} waits: {error}")
                continue
            self._done(kept, kept.with_changes(dispute_id=case.dispute_id))
            self.counts.disputed += 1
            opened.append(case)
        return opened

    def _done(self, kept: KeptCall, updated: KeptCall) -> None:
        self._pending.pop(kept.call_id, None)
        self.blocked.pop(kept.call_id, None)
        self.counts.waiting = len(self._pending)
        if self.kept is not None:
            self.kept.save(updated)
