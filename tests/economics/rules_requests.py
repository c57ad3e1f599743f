"""Rules of the economics state machine for calls paid on chain: requests (open or designated),
attestations (good and forged), single and batch fulfilment, rejections and refunds."""

from __future__ import annotations

from eth_utils import keccak, to_checksum_address
from hypothesis import strategies as st
from hypothesis.stateful import rule

from . import reference as ref
from .machine_base import (
    ACTOR,
    ATT_KIND,
    MAX_UINT256,
    PICK,
    SECP256K1_N,
    TOPIC_DESIGNATED,
    TOPIC_FULFILLED,
    TOPIC_REQUESTED,
    TOPIC_SKIPPED,
)
from .signing import Attestation


class RequestRules:
    """On-chain call rules (a mixin of EconomicsMachine, on MachineBase's plumbing)."""

    # ------------------------------------------------------------ attestations

    def attestation(self, kind: str, request_pick: int, signer_pick: int) -> tuple[ref.Signed, tuple, bytes]:
        """A (possibly forged) attestation: the model's view of it, the ABI tuple, the signature."""
        if kind == "replay" and self.used:
            fields, signature = self.used[request_pick % len(self.used)]
            request_id, model_id, version, input_hash, output_hash = fields
            signer = self.recover_model_view(fields, signature)
            return ref.Signed(request_id, model_id, version, input_hash, signer, output_hash), fields, signature
        if kind == "unknown":
            request_id = self.hub.next_request_id(self.actor(request_pick))
            model_id, version, input_hash = 1, 1, keccak(b"")
        else:
            request_id = self.pick_request(request_pick)
            request = self.hub.requests.get(request_id)
            if request is not None:
                model_id, version = request.model_id, request.version
                input_hash = keccak(self.inputs[request_id])
            else:
                model_id, version, input_hash = 1, 1, keccak(b"")
        if kind == "wrong_model":
            model_id += 1
        elif kind == "wrong_version":
            version += 1
        elif kind == "wrong_input":
            input_hash = keccak(input_hash)
        signer = self.pick_signer(signer_pick)
        output_hash = keccak(self.attested_output(model_id, version, input_hash, signer, signer_pick))
        att = Attestation(request_id, model_id, version, input_hash, output_hash)
        chain_id, verifying = self.w.chain_id, self.w.escrow
        if kind == "wrong_chain":
            chain_id = 1
        elif kind == "wrong_contract":
            verifying = self.w.registry
        signature = self.w.signers[signer].sign_attestation(att, chain_id, verifying)
        view_signer: str | None = signer
        if kind in ("wrong_chain", "wrong_contract"):
            view_signer = "foreign-domain"  # recovers to an unrelated key, never a relayer
        elif kind == "malleable":  # the same signature with s in the upper half: refused
            r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
            signature = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
            view_signer = None
        elif kind == "short":
            signature = signature[:64]
            view_signer = None
        return ref.Signed(request_id, model_id, version, input_hash, view_signer, output_hash), att.as_tuple(), signature

    def recover_model_view(self, fields: tuple, signature: bytes) -> str | None:
        """Who the model says a replayed signature recovers to (its original view)."""
        return self._signers[(fields, signature)]

    @property
    def _signers(self) -> dict:
        if not hasattr(self, "_signer_views"):
            self._signer_views = {}
        return self._signer_views

    def remember(self, view: ref.Signed, fields: tuple, signature: bytes) -> None:
        if (fields, signature) not in self._signers:
            self._signers[(fields, signature)] = view.signer
            self.used.append((fields, signature))

    # ------------------------------------------------------------ calls

    @rule(
        actor=ACTOR,
        model=PICK,
        version=st.integers(0, 4),
        max_price=st.sampled_from(["exact", "exact", "below", "above", "unlimited", "zero"]),
        fund=st.booleans(),
        data=st.binary(max_size=24),
        via=st.one_of(st.none(), st.none(), PICK),
    )
    def request(self, actor, model, version, max_price, fund, data, via=None, sender=None, designate=None):
        """An open request, or one designated to a relayer (mostly an active one; `via`)."""
        sender = sender or self.actor(actor)
        if designate is not None:
            via = 0
        model_id = self.pick_model(model)
        m = self.hub.models.get(model_id)
        price = m.price if m else 0
        if fund and m and self.hub.credit[sender] < price and price - self.hub.credit[sender] <= ref.MAX_CREDIT:
            self.fund(sender, price - self.hub.credit[sender])
        maximum = {
            "exact": price,
            "below": max(price - 1, 0),
            "above": price + 1 + actor,
            "unlimited": MAX_UINT256,
            "zero": 0,
        }[max_price]
        if m and version > m.latest_version + 1:
            version = m.latest_version  # mostly known versions; latest + 1 is unknown
        if via is None:
            request, receipt = self.transact(
                lambda ts: self.hub.request(sender, model_id, version, keccak(data), maximum, ts),
                sender, self.w.escrow, "requestInference", model_id, version, data, maximum, abi=self.E,
            )  # fmt: skip
        else:
            relayer = designate or self.pick_signer(via)
            request, receipt = self.transact(
                lambda ts: self.hub.request(sender, model_id, version, keccak(data), maximum, ts, relayer=relayer),
                sender, self.w.escrow, "requestInferenceVia", model_id, version, data, maximum, relayer, abi=self.E,
            )  # fmt: skip
        if request is not None:
            self.inputs[request.request_id] = data
            logged = [log for log in receipt.logs if log["topics"][0] == TOPIC_REQUESTED]
            self.check(
                len(logged) == 1 and int(logged[0]["topics"][1], 16) == request.request_id,
                f"request id: chain {logged and logged[0]['topics'][1]}, model {request.request_id:#x}",
            )
            designated = [log for log in receipt.logs if log["topics"][0] == TOPIC_DESIGNATED]
            self.check(
                [(int(d["topics"][1], 16), to_checksum_address("0x" + d["topics"][2][-40:])) for d in designated]
                == ([(request.request_id, request.relayer)] if request.relayer else []),
                f"RelayerDesignated events {designated} for {request}",
            )

    @rule(kind=ATT_KIND, request=PICK, signer=PICK, submitter=ACTOR)
    def fulfill(self, kind, request, signer, submitter):
        view, fields, signature = self.attestation(kind, request, signer)
        self.remember(view, fields, signature)
        sender = self.actor(submitter)  # anyone may submit
        self.transact(
            lambda ts: self.hub.fulfill(view, ts),
            sender, self.w.escrow, "fulfill", fields, signature, abi=self.E,
        )  # fmt: skip

    @rule(
        items=st.lists(st.tuples(ATT_KIND, PICK, PICK), min_size=0, max_size=6),
        duplicate=st.booleans(),
        mismatched_lengths=st.booleans(),
        submitter=ACTOR,
    )
    def fulfill_batch(self, items, duplicate, mismatched_lengths, submitter):
        built = [self.attestation(kind, r, s) for kind, r, s in items]
        if duplicate and built:
            built.append(built[0])  # the same attestation twice in one batch
        for view, fields, signature in built:
            self.remember(view, fields, signature)
        views = [b[0] for b in built]
        atts = [b[1] for b in built]
        sigs = [b[2] for b in built]
        if mismatched_lengths and len(items) % 3 == 1:
            sigs = sigs[:-1]

            def predict(ts):
                raise ref.Revert("InferenceEscrow_LengthMismatch")
        else:

            def predict(ts):
                return self.hub.fulfill_batch(views, ts)

        outcome, receipt = self.transact(
            predict, self.actor(submitter), self.w.escrow, "fulfillBatch", atts, sigs, abi=self.E
        )
        if outcome is None:
            return
        # Item by item: settled ones emit InferenceFulfilled, the others InferenceSkipped with a
        # reason the model agrees with; in the order of the batch.
        logs = [log for log in receipt.logs if log["topics"][0] in (TOPIC_FULFILLED, TOPIC_SKIPPED)]
        self.check(len(logs) == len(views), f"{len(logs)} settle/skip events for {len(views)} items")
        for i, (expected, log) in enumerate(zip(outcome, logs)):
            key = ("fulfillBatch item", "settled" if isinstance(expected, ref.Settlement) else f"skipped {sorted(expected)}")
            self.w.outcomes[key] = self.w.outcomes.get(key, 0) + 1
            request_id = int(log["topics"][1], 16)
            self.check(request_id == views[i].request_id, f"item {i} is about {request_id:#x}")
            if isinstance(expected, ref.Settlement):
                self.check(log["topics"][0] == TOPIC_FULFILLED, f"item {i} ({request_id:#x}) skipped; the model settles it")
            else:
                self.check(
                    log["topics"][0] == TOPIC_SKIPPED, f"item {i} ({request_id:#x}) settled; the model skips it {expected}"
                )
                reason = int(log["data"], 16)
                self.check(reason in expected, f"item {i} skipped for reason {reason}; the model says {sorted(expected)}")

    @rule(actor=PICK, request=PICK, reason=st.integers(0, 5))
    def reject(self, actor, request, reason):
        """Only a designated request's relayer may reject it (active or not); nobody an open one."""
        designated = [r.request_id for r in self.hub.requests.values() if r.status == ref.PENDING and r.relayer]
        request_id = designated[request % len(designated)] if designated and actor % 2 else self.pick_request(request)
        before = self.hub.requests.get(request_id)
        sender = before.relayer if before and before.relayer and actor % 3 else self.pick_signer(actor)
        locked = before.price if before and before.status == ref.PENDING else None
        caller = before.caller if before else None
        credit_before = self.observed_credit(caller) if caller else None
        result, _ = self.transact(
            lambda ts: self.hub.reject(sender, request_id, reason),
            sender, self.w.escrow, "reject", request_id, reason, abi=self.E,
        )  # fmt: skip
        if result is not None:
            self.check(self.observed_credit(caller) - credit_before == locked, "a rejection returns exactly the locked price")

    @rule(actor=ACTOR, request=PICK)
    def refund(self, actor, request):
        sender = self.actor(actor)  # anyone
        request_id = self.pick_request(request)
        before = self.hub.requests.get(request_id)
        locked = before.price if before and before.status == ref.PENDING else None
        caller = before.caller if before else None
        credit_before = self.observed_credit(caller) if caller else None
        result, _ = self.transact(
            lambda ts: self.hub.refund(request_id, ts),
            sender, self.w.escrow, "refund", request_id, abi=self.E,
        )  # fmt: skip
        if result is not None:
            self.check(self.observed_credit(caller) - credit_before == locked, "a refund returns exactly the locked price")
