"""How the relayer signs the attestations of fast calls: with its key directly (libsecp256k1)
when the key can be read without a prompt, otherwise through its Ape account, about 10x slower.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ..typed_data import ATTESTATION, Attestation, KeySigner

log = logging.getLogger("modelhub.relayer")


class AttestationSigner:
    """Signs attestations of fast calls: with the key when it can be read (Ape test accounts;
    keyfile accounts with APE_ACCOUNTS_<alias>_PASSPHRASE set), otherwise through the account."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.domain = hub.domain
        key = private_key_of(hub.account)
        self._key = KeySigner(key) if key is not None else None
        if self._key is not None and self._key.address != hub.address:
            log.warning("the key found for %s signs as %s; signing through the account instead",
                        hub.address, self._key.address)
            self._key = None
        if self._key is None:
            log.info("signing fast-call attestations through the Ape account (slow path): set "
                     "APE_ACCOUNTS_<alias>_PASSPHRASE to let the relayer sign with the key directly")

    @property
    def direct(self) -> bool:
        """True when it signs with the key itself (it cannot refuse, and takes microseconds)."""
        return self._key is not None

    def sign(self, request_id: int, model_id: int, version: int, input_hash: bytes, output_hash: bytes) -> bytes:
        if self._key is not None:
            return self._key.sign_digest(self.domain.digest_of(
                ATTESTATION, (request_id, model_id, version, input_hash, output_hash)))
        return self.hub.sign_attestation(Attestation(request_id, model_id, version, input_hash, output_hash))


def private_key_of(account: Any) -> bytes | None:
    """The raw private key of an Ape account, when it can be had without a prompt."""
    key = getattr(account, "private_key", None)  # Ape's test accounts
    if key:
        return bytes.fromhex(key.removeprefix("0x")) if isinstance(key, str) else bytes(key)
    alias, keyfile = getattr(account, "alias", None), None
    try:
        keyfile = getattr(account, "keyfile", None)  # Ape keyfile accounts: the encrypted JSON
    except Exception:  # noqa: BLE001 -- an unreadable keyfile: Ape reports it when it signs
        return None
    passphrase = os.environ.get(f"APE_ACCOUNTS_{alias}_PASSPHRASE") if alias else None
    if not keyfile or not passphrase:
        return None
    from eth_account import Account

    try:
        return bytes(Account.decrypt(keyfile, passphrase))
    except ValueError:
        log.warning("APE_ACCOUNTS_%s_PASSPHRASE does not decrypt that account's keyfile", alias)
        return None
