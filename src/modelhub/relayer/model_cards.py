"""A model version's own tolerance, from its model card, for the juror: honoured only when the
version's metadata URI names the card by its content (`ipfs://<CID>`), so nobody can loosen it
after the call.

The card is fetched like a model file (relayer/file_fetcher.py: the other relayers'
/v1/artifacts/{cid}, then --fetch-from, IPFS gateways say), kept only if its bytes hash to the
CID's digest, and filed in the relayer's store, from which the relayer serves it to the others.
A card that is not content-addressed, that no source served for `wait` seconds, or that is too
large, not JSON or declares a malformed tolerance means the default tolerance, logged once with
why. A card held is read once per digest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import InvalidContentIdError, InvalidModelCardError, ModelFileUnavailableError
from ..store import ModelStore
from ..verdict import TolerancePolicy, card_digest, read_card

if TYPE_CHECKING:
    from .file_fetcher import FileFetcher

log = logging.getLogger("modelhub.relayer")


class CardTolerances:
    """The tolerance policy of each model version, by its card. `cards(model_id, version)` is the
    version's metadata URI ("" for none, None for a version not seen: the default either way)."""

    def __init__(self, cards: Callable[[int, int], str | None], fetcher: FileFetcher, store: ModelStore,
                 wait: float) -> None:
        self.cards, self.fetcher, self.store, self.wait = cards, fetcher, store, wait
        self._policies: dict[bytes, TolerancePolicy] = {}  # card digest -> what it declares
        self._told: set[tuple[str, str]] = set()  # (uri, kind of reason) already logged

    def policy(self, model_id: int, version: int) -> TolerancePolicy | None:
        """The tolerance of `version` of `model_id`: its card's when the card is content-addressed,
        held and well formed, else the default; None while the card is being fetched."""
        uri = self.cards(model_id, version)
        if not uri:
            return TolerancePolicy()
        try:
            digest = card_digest(uri)
        except InvalidContentIdError as error:
            return self._default(uri, "not content-addressed",
                                 f"the card is not named by its content, so it could change after the call ({error})")
        known = self._policies.get(digest)
        if known is not None:
            return known
        fetch = self.fetcher.want(digest)
        if not fetch.held:
            if fetch.given_up_for(self.wait, time.monotonic()):
                # Not kept: the card may come later, for the next dispute of this version.
                liars = f"; discarded what {', '.join(sorted(fetch.liars))} served (another file, or too large)" \
                    if fetch.liars else ""
                return self._default(uri, "absent",
                                     f"no source served the card for {self.wait:g} s ({fetch.problem}){liars}")
            return None
        try:
            data = self.store.get_verified(digest)
        except ModelFileUnavailableError:
            return None  # the store lost it (or it is damaged): the fetcher gets it again
        policy = self._policies[digest] = self._read(uri, data)
        return policy

    def _read(self, uri: str, data: bytes) -> TolerancePolicy:
        try:
            policy = read_card(data)
        except InvalidModelCardError as error:
            return self._default(uri, error.kind, error.reason)
        if policy.outputs:
            log.info("model card %s: judged with the tolerance it declares for %s", uri, ", ".join(
                f"{name} (atol {t.atol:g}, rtol {t.rtol:g})" for name, t in sorted(policy.outputs.items())))
        return policy

    def _default(self, uri: str, kind: str, why: str) -> TolerancePolicy:
        """The default tolerance, logged once per card and kind of reason (`why` says more)."""
        if (uri, kind) not in self._told:
            self._told.add((uri, kind))
            log.warning("model card %s: judged with the default tolerance: %s", uri, why)
        return TolerancePolicy()
