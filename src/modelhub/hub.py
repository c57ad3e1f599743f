"""The Model Hub SDK: a `Hub` bound to one deployment and one Ape account, with everything
uploaders, callers, relayers and the CLI do on chain (results are modelhub.results' dataclasses).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import requests
from eth_utils import is_address, to_checksum_address

from . import errors as e
from .answers import SignedAnswer
from .codec import decode_input, encode_input, input_hash
from .contracts import (
    HubContracts,
    ReceiptSkipReason,
    RequestStatus,
    SkipReason,
    chain_errors,
    load_contracts,
    refusal,
)
from .deployments import DEV_CHAIN_IDS, Deployment, locate_deployment
from .disputes import DisputeMethods
from .errors import RejectReason
from .fetch import Limits, Source, fetch_bytes, fetch_first
from .preflight import InputCheck, default_cache_folder
from .relayer_client import RelayerClient, post_artifact, resolve_relayer
from .results import (
    FulfillOutcome,
    InferenceResult,
    ModelInfo,
    ModelStats,
    ModelVersion,
    Payee,
    PendingFees,
    PendingMinBond,
    PriceNotice,
    Published,
    ReceiptOutcome,
    ReceiptSigner,
    ReceiptTerms,
    RelayerInfo,
    RequestedCall,
    RequestInfo,
    RequestRecord,
    Reservation,
    Upload,
    VerifiedOutput,
)
from .runtime import read_model_file
from .session import FastSession
from .spotcheck import SpotChecker
from .store import ModelStore, digest_to_cid, file_digest
from .typed_data import MIN_RECEIPT_PRICE, Attestation, Domain, Receipt
from .verdict import card_uri, read_card

__all__ = ["Hub"]

# Blocks per eth_getLogs scan when listing a caller's requests, newest span first.
REQUEST_SCAN_SPAN = 10_000


def _parameter(contract: str, getter: str, doc: str, kind: type = int) -> property:
    """A Hub property: a parameter read from one of its contracts (`HubContracts` field
    `contract`) through the view `getter`, as `kind`."""
    return property(lambda hub: kind(hub._call(getattr(getattr(hub.contracts, contract), getter))), doc=doc)


def _contract_address(contract: str, doc: str) -> property:
    """A Hub property: the address of one of its contracts (`HubContracts` field `contract`)."""
    return property(lambda hub: str(getattr(hub.contracts, contract).address), doc=doc)


# --- the hub -----------------------------------------------------------------------------------


class Hub(DisputeMethods):
    """Model Hub on one deployment, acting as `account` (an Ape account: it signs every
    transaction and attestation). Amounts are fee-token base units. Disputes (challenges, the
    jury's votes, payouts) are the methods of `modelhub.disputes.DisputeMethods`.

    With `wallet` (the address of a contract wallet `account` owns), the hub acts as that
    wallet: `address` is the wallet's, and every transaction is sent through the wallet's
    `execute(target, data)` (the owner-only forwarding call of contracts/testing/TestWallet.sol).
    The escrow checks receipts by ECDSA alone, so such a wallet pays fast calls with a receipt
    signer key it registers (`set_receipt_signer`; FastSession does it, with `account`'s key).

    `model_files` is where model files fetched to check inputs before paying are cached (a
    ModelStore or its folder; default: preflight.default_cache_folder() / "models")."""

    def __init__(self, deployment: Deployment, account: Any, wallet: Any = None,
                 model_files: ModelStore | str | Path | None = None) -> None:
        self.deployment = deployment
        self.account = account
        self.contracts: HubContracts = load_contracts(deployment)
        self.wallet: Any = None if wallet is None else _wallet_instance(wallet)
        self._model_files = model_files
        self._input_check: InputCheck | None = None
        self._request_timeout: int | None = None
        self._digests: dict[tuple[int, int], bytes] = {}
        self._domain: Domain | None = None

    @classmethod
    def connect(cls, account: Any, chain_id: int | None = None, folder: Path | None = None,
                deployment: str | Path | None = None) -> "Hub":
        """The hub of the connected network: its deployment file is `deployment` if given, else
        `<chainId>.json` in `folder` if given, else found by the chain id (the checkout's
        deployments/, the user's config folder, the deployments shipped with the package; see
        modelhub.deployments)."""
        from ape import chain, networks

        provider = networks.active_provider
        if provider is None or not provider.is_connected:
            raise e.ChainUnreachableError(
                "no network is connected: run inside `ape run`/`modelhub ... --network`, or "
                "`with networks.parse_network_choice('ethereum:local:foundry'):`"
            )
        with chain_errors():
            connected = chain.chain_id
        found, source = locate_deployment(chain_id if chain_id is not None else connected, folder, deployment)
        try:
            return cls(found, account)
        except e.ChainMismatchError as error:  # say which file holds the stale addresses
            raise e.ChainMismatchError(f"{error} (deployment read from {source})") from error

    @property
    def address(self) -> str:
        """The account the hub acts as: the wallet's address, or `account`'s."""
        return self.wallet.address if self.wallet is not None else self.account.address

    @property
    def signer_address(self) -> str:
        """The key that signs for this hub (`account`): the address itself, unless a wallet."""
        return to_checksum_address(self.account.address)

    @property
    def domain(self) -> Domain:
        """The escrow's EIP-712 domain: digests and messages of receipts and attestations."""
        if self._domain is None:
            self._domain = Domain(self.deployment.chain_id, self.deployment.inference_escrow)
        return self._domain

    escrow_address = _contract_address("escrow", "The InferenceEscrow's address (checksummed).")
    registry_address = _contract_address("registry", "The ModelRegistry's address (checksummed).")
    relayers_address = _contract_address("relayers", "The RelayerRegistry's address (checksummed).")
    token_address = _contract_address("token", "The fee token's address (checksummed).")

    # ------------------------------------------------------------------ uploaders

    def upload_model(self, path: str | Path, name: str, price: int, metadata_uri: str = "",
                     store: ModelStore | None = None, relayer_url: str | None = None,
                     card: bytes | str | Path | None = None) -> Upload:
        """Checks the ONNX file, stores it (locally and/or at a relayer), registers it as a new
        model at `price` per call. Without `store` and `relayer_url` the file is only
        registered: make it available to relayers yourself. Relayers store only files of
        registered versions, so the file goes to `relayer_url` right after the registration
        (an unreachable relayer is found out before it). `card` (its bytes or a path), instead
        of `metadata_uri`: a model card jurors read its tolerance from (`verdict.read_card`),
        checked first, named by its content (`verdict.card_uri`) and stored like the file."""
        metadata_uri, card_data = _card_and_uri(metadata_uri, card)
        data, digest, cid = self._prepare_artifact(path, store, relayer_url, card_data)
        registry = self.contracts.registry
        tx = self._send(registry.registerModel, name, digest, metadata_uri, price)
        model_id = self._event(tx, registry.ModelRegistered).modelId
        self._post_registered(relayer_url, [data, card_data], f"model {model_id} is registered")
        return Upload(model_id, digest, cid)

    def publish_version(self, model_id: int, path: str | Path, metadata_uri: str = "",
                        store: ModelStore | None = None, relayer_url: str | None = None,
                        card: bytes | str | Path | None = None) -> Published:
        """Publishes a new file as the latest version of a model you own (`card`: as for
        `upload_model`)."""
        metadata_uri, card_data = _card_and_uri(metadata_uri, card)
        owner = self._model_row(model_id)[0]
        if owner != self.address:
            # Checked before the upload: storing a file for a refused transaction wastes both.
            raise e.NotModelOwnerError(
                f"{self.address} does not own model {model_id} (its owner is {owner}); only "
                "its owner may publish versions"
            )
        data, digest, cid = self._prepare_artifact(path, store, relayer_url, card_data)
        registry = self.contracts.registry
        tx = self._send(registry.publishVersion, model_id, digest, metadata_uri)
        version = self._event(tx, registry.VersionPublished).version
        self._post_registered(relayer_url, [data, card_data], f"version {version} of model {model_id} is published")
        return Published(version, digest, cid)

    def set_price(self, model_id: int, price: int) -> None:
        self._send(self.contracts.registry.setPrice, model_id, price)

    def set_payees(self, model_id: int, payees: Sequence[tuple[Any, int]]) -> None:
        """Shares the payees' part among 1 to 8 accounts: [(account, share_bps)], summing to 10_000."""
        accounts = [_address(account) for account, _ in payees]
        shares = [int(share) for _, share in payees]
        self._send(self.contracts.registry.setPayees, model_id, accounts, shares)

    def set_active(self, model_id: int, active: bool) -> None:
        self._send(self.contracts.registry.setActive, model_id, active)

    def transfer_model(self, model_id: int, new_owner: Any) -> None:
        self._send(self.contracts.registry.transferModel, model_id, _address(new_owner))

    def earnings(self, account: Any = None) -> int:
        """Released revenue waiting for `withdraw_earnings` (payees, relayers, treasury)."""
        return self._call(self.contracts.escrow.earningsOf, self._who(account))

    def withdraw_earnings(self) -> int:
        """Pays out all of this account's earnings; returns the amount."""
        escrow = self.contracts.escrow
        tx = self._send(escrow.withdrawEarnings)
        return self._event(tx, escrow.EarningsWithdrawn).amount

    def model_stats(self, model_id: int) -> ModelStats:
        calls, revenue = self._call(self.contracts.escrow.modelStats, model_id)
        return ModelStats(int(calls), int(revenue))

    # ------------------------------------------------------------------ callers

    def faucet(self, amount: int) -> int:
        """Mints test fee tokens to this account (dev chains only); returns its token balance."""
        if self.deployment.chain_id not in DEV_CHAIN_IDS:
            raise e.NotADevChainError(
                f"chain {self.deployment.chain_id} is not a dev chain: its fee token has no "
                "faucet; get fee tokens from an exchange or another holder"
            )
        room = 2**256 - 1 - self._call(self.contracts.token.totalSupply)
        if amount > room:
            raise e.AmountTooLargeError(
                f"{amount} is too large (max {room}): the test token's supply cannot pass 2**256 - 1",
                inputs={"amount": amount, "max": room})
        self._send(self.contracts.token.mint, self.address, amount)
        return self.token_balance()

    def token_balance(self, account: Any = None) -> int:
        """Fee tokens held in the wallet (not yet deposited)."""
        return self._call(self.contracts.token.balanceOf, self._who(account))

    def deposit(self, amount: int) -> int:
        """Moves `amount` fee tokens from the wallet into prepaid credit (approving the escrow
        first if its allowance is short); returns the new credit."""
        self._spend_tokens(self.contracts.escrow, amount, "deposit")
        self._send(self.contracts.escrow.deposit, amount)
        return self.balance()

    def balance(self, account: Any = None) -> int:
        """Free prepaid credit in the escrow."""
        return self._call(self.contracts.escrow.balanceOf, self._who(account))

    def withdraw(self, amount: int) -> int:
        """Takes `amount` of free credit back to the wallet at once; returns the credit left.
        Reserved credit is not free: release it first (`announce_release`, then `release`)."""
        credit = self.balance()
        if credit < amount:
            raise self._short_of_free_credit(credit, amount, "withdraw")
        self._send(self.contracts.escrow.withdraw, amount)
        return self.balance()

    def _short_of_free_credit(self, credit: int, amount: int, what: str) -> e.InsufficientCreditError:
        """InsufficientCreditError for `what` ("withdraw", "reserve") needing `amount` of free
        credit, saying where the rest is when some of it is reserved."""
        reserved = sum(r.reserved for r in self.reservations())
        where = (f"; {reserved} more is reserved for relayers and comes back to free credit "
                 "through announce_release, then release once the withdrawal delay has passed"
                 if reserved else "")
        todo = ("withdraw at most that" if what == "withdraw"
                else f"deposit {amount - credit} more first (Hub.deposit)")
        return e.InsufficientCreditError(
            f"{self.address} has {credit} in free credit but wants to {what} {amount}: {todo}{where}",
            "InferenceEscrow_InsufficientCredit",
            {"account": self.address, "credit": credit, "required": amount})

    # ------------------------------------------------------------------ reservations and signer keys

    def reservation(self, caller: Any = None, relayer: Any = None) -> Reservation:
        """What `caller` (default: this account) set aside for `relayer`'s receipts, and the
        release it announced. `relayer` is required (an address or an account)."""
        if relayer is None:
            raise TypeError("reservation() needs the relayer whose reservation to read")
        who, whom = self._who(caller), _address(relayer)
        reserved, releasing, release_at = self._call(self.contracts.escrow.reservation, who, whom)
        return Reservation(who, whom, int(reserved), int(releasing), int(release_at))

    def reserve(self, relayer: Any, amount: int) -> Reservation:
        """Moves `amount` of free credit into this account's reservation for `relayer` (an
        address or account), what that relayer's receipts are paid from; returns the
        reservation. Only that relayer can settle receipts against it, and it comes back to
        free credit only `withdrawal_delay` after `announce_release`."""
        whom = _address(relayer)
        if amount <= 0:
            raise refusal("InferenceEscrow_ZeroAmount")
        credit = self.balance()
        if credit < amount:
            raise self._short_of_free_credit(credit, amount, "reserve")
        self._send(self.contracts.escrow.reserve, whom, amount)
        return self.reservation(relayer=whom)

    def deposit_and_reserve(self, relayer: Any, amount: int, account: Any = None) -> Reservation:
        """Moves `amount` fee tokens from this wallet straight into the reservation of `account`
        (default: this account) for `relayer`, in one transaction (`reserveFor`)."""
        who, whom = self._who(account), _address(relayer)
        if amount <= 0:
            raise refusal("InferenceEscrow_ZeroAmount")
        self._spend_tokens(self.contracts.escrow, amount, "reserve")
        self._send(self.contracts.escrow.reserveFor, who, whom, amount)
        return self.reservation(who, whom)

    def announce_release(self, relayer: Any, amount: int) -> Reservation:
        """Announces that up to `amount` of the reservation for `relayer` goes back to free
        credit `withdrawal_delay` from now (0 cancels; replaces an earlier announcement).
        The relayer stops counting on it at once and settles what it holds meanwhile; the
        returned reservation's `release_at` says when `release` works."""
        whom = _address(relayer)
        if amount < 0:
            raise ValueError("a release announces a non-negative amount (0 cancels)")
        self._send(self.contracts.escrow.announceRelease, whom, amount)
        return self.reservation(relayer=whom)

    def release(self, relayer: Any) -> int:
        """Moves the announced part of the reservation for `relayer` (at most what is left of
        it after settlements) back to free credit, once its delay has passed; returns the
        amount released. Raises NothingToReleaseError or ReleaseNotReadyError (with the time)."""
        whom = _address(relayer)
        held = self.reservation(relayer=whom)
        if held.release_at == 0:
            raise refusal("InferenceEscrow_NothingToRelease", caller=self.address, relayer=whom)
        if _chain_time() < held.release_at:
            raise refusal("InferenceEscrow_ReleaseNotReady", caller=self.address, relayer=whom,
                          readyAt=held.release_at)
        escrow = self.contracts.escrow
        tx = self._send(escrow.release, whom)
        return int(self._event(tx, escrow.Released).amount)

    def reservations(self, caller: Any = None) -> list[Reservation]:
        """The reservations of `caller` (default: this account) for every relayer it ever
        reserved for (found through the escrow's Reserved events), as they are now."""
        who = self._who(caller)
        logs = self._logs(self.contracts.escrow, "Reserved", {"caller": who})
        relayers = dict.fromkeys(to_checksum_address(log.relayer) for log in logs)
        return [self.reservation(who, relayer) for relayer in relayers]

    def set_receipt_signer(self, signer: Any) -> ReceiptSigner:
        """Lets `signer` (an address or account; None removes it) sign receipts for this
        account besides its own key; a contract wallet needs one, since receipts are checked
        by ECDSA alone. The first signer applies at once; replacing or removing one applies
        `withdrawal_delay` later (relayers settle what the old key signed meanwhile)."""
        address = _ZERO_ADDRESS if signer is None else _address(signer)
        self._send(self.contracts.escrow.setReceiptSigner, address)
        return self.receipt_signer()

    def reservations_and_signers(self, callers: Sequence[Any], relayer: Any) -> list[tuple[Reservation, ReceiptSigner]]:
        """For each of `callers`: its reservation for `relayer` and its receipt signer key, read
        at the latest block in one JSON-RPC batch (a relayer follows many callers)."""
        whom = _address(relayer)
        who = [_address(caller) for caller in callers]
        escrow = self.contracts.escrow
        rows = self._batch_call([(escrow.reservation, (caller, whom)) for caller in who]
                                + [(escrow.receiptSigner, (caller,)) for caller in who])
        held, keys = rows[:len(who)], rows[len(who):]
        return [(Reservation(caller, whom, *(int(value) for value in reservation)),
                 ReceiptSigner(caller, _optional_address(key[0]), _optional_address(key[1]), int(key[2])))
                for caller, reservation, key in zip(who, held, keys)]

    def receipt_signer(self, account: Any = None) -> ReceiptSigner:
        """The receipt signer key of `account` (default: this account) in force now, and a
        pending change of it. A receipt is valid if signed by the account's own key or by this one."""
        who = self._who(account)
        signer, next_signer, next_at = self._call(self.contracts.escrow.receiptSigner, who)
        return ReceiptSigner(who, _optional_address(signer), _optional_address(next_signer),
                             int(next_at))

    # ------------------------------------------------------------------ receipts (off-chain calls)

    withdrawal_delay = _parameter("escrow", "withdrawalDelay", "Seconds between announcing the release of a "
                                  "reservation and making it, and before a change of receipt signer applies.")

    terms_notice_period = _parameter("escrow", "termsNoticePeriod",
                                     "Seconds between a fee change and the settlements it applies to.")

    def pending_fees(self) -> PendingFees | None:
        """A fee change the owner scheduled and that is not in force yet (None when none):
        settlements from its `effective_at` on split fees with its shares."""
        protocol_bps, relayer_bps, effective_at = self._call(self.contracts.escrow.pendingFees)
        if not effective_at:
            return None
        return PendingFees(int(protocol_bps), int(relayer_bps), int(effective_at))

    def pending_min_bond(self) -> PendingMinBond | None:
        """A rise of the relayers' minimum bond that is not in force yet (None when none)."""
        new_min_bond, effective_at = self._call(self.contracts.relayers.pendingMinBond)
        if not effective_at:
            return None
        return PendingMinBond(int(new_min_bond), int(effective_at))

    def channel_price(self, caller: Any, relayer: Any, model_id: int) -> int:
        """The least a receipt on the channel (caller, relayer, model) must pay per new call if
        settled now (at least 1; 0 for an unknown model)."""
        return int(self._call(self.contracts.escrow.channelPrice, _address(caller),
                              _address(relayer), model_id))

    price_notice_period = _parameter("registry", "priceNoticePeriod",
                                     "Seconds a price rise waits before it binds signed receipts.")

    def price_notice(self, model_id: int) -> PriceNotice:
        """The least a receipt must pay per call for `model_id` now, and until when: during a
        price rise's notice the price before the rise (the registry's floor), else the price;
        never less than the escrow's 1 base unit per receipt call (free models too)."""
        exists, price = self._receipt_terms_row(model_id)[:2]
        if not exists:
            raise refusal("ModelRegistry_UnknownModel", modelId=model_id)
        # priceNotice is (floor, endsAt) only while a rise is under notice, (0, 0) otherwise.
        floor, ends_at = self._call(self.contracts.registry.priceNotice, model_id)
        lowest = int(floor) if ends_at else int(price)
        return PriceNotice(max(lowest, MIN_RECEIPT_PRICE), int(ends_at), int(price))

    def receipt_terms(self, model_id: int) -> ReceiptTerms:
        """What a relayer checks a receipt for `model_id` against: price, the last rise's floor
        and when its notice ends, active flag, latest version (`exists` False: unknown id)."""
        exists, price, floor, floor_ends_at = self._receipt_terms_row(model_id)[:4]
        if not exists:
            return ReceiptTerms(False)
        _, price, latest, active, _, _ = self._model_row(model_id)
        return ReceiptTerms(True, price, int(floor), int(floor_ends_at), latest, active)

    def _receipt_terms_row(self, model_id: int) -> tuple:
        """ModelRegistry.receiptTerms: (exists, price, floor, floor ends at, payees, shares)."""
        return tuple(self._call(self.contracts.registry.receiptTerms, model_id))

    def channel(self, caller: Any, relayer: Any, model_id: int) -> tuple[int, int]:
        """What the escrow has settled of the channel (caller, relayer, model): (calls, amount)."""
        calls, amount = self._call(self.contracts.escrow.channel, _address(caller), _address(relayer), model_id)
        return int(calls), int(amount)

    def receipt_digest(self, receipt: Receipt) -> bytes:
        """The EIP-712 digest of `receipt` for this deployment (what the caller signs)."""
        return self.domain.digest(receipt)

    def fast_session(self, model_id: int, relayer: str | None = None, version: int = 0,
                     max_price: int | None = None, receipt_lifetime: int = 86_400,
                     timeout: float = 30.0, reserve: int | None = None,
                     top_up: bool = True, progress: Callable[[str], None] | None = None,
                     signer: Any = None, keep: Any = None, spot_check: Any = None) -> FastSession:
        """A session of fast calls of `model_id` at `relayer` (its URL or address; None: the
        first active relayer that answers), paid with receipts drawn on this account's
        reservation for that relayer. Before the first call it makes sure the reservation can
        pay: if not, it reserves `reserve` from free credit (default: 100 calls at the most a
        call may cost, or all free credit if less), and tops it up the same way when it runs
        out (`top_up`); `progress` is told of each such transaction. Each call pays at most
        `max_price` (default: the price now); `version` 0 pins the latest version at opening.
        A contract-wallet hub signs with `signer` (default: its owner key), registered as its
        receipt signer if it has none. `keep` keeps each call for a later challenge, `spot_check`
        re-runs a share of calls locally and challenges wrong ones. See
        `modelhub.session.FastSession`; use it with `with`."""
        return FastSession(self, model_id, relayer=relayer, version=version, max_price=max_price,
                           receipt_lifetime=receipt_lifetime, timeout=timeout, reserve=reserve,
                           top_up=top_up, progress=progress, signer=signer, keep=keep,
                           spot_check=spot_check)

    def settle_receipts(self, items: Sequence[tuple[Receipt, bytes]]) -> list[ReceiptOutcome]:
        """Settles signed receipts in one transaction; the outcome of each item (in order) says
        what it paid, or why it was skipped."""
        if not items:
            return []
        return self._batch("settleReceipts", items, ("ReceiptSettled", "ReceiptSkipped"), lambda log, settled: (
            ReceiptOutcome(log.caller, log.relayer, log.modelId, log.calls, settled=True, paid=log.paid) if settled
            else ReceiptOutcome(log.caller, log.relayer, log.modelId, log.calls, settled=False,
                                skip_reason=ReceiptSkipReason(log.reason))))

    def request(self, model_id: int, inputs: Mapping[str, Any] | bytes, version: int = 0,
                max_price: int | None = None, relayer: Any = None,
                check_input: bool = True, file_from: str | None = None) -> RequestInfo:
        """Pays for one call of `model_id` on `inputs` (a JSON object of tensors, or its bytes).
        `max_price` defaults to the current price; credit is checked before sending.

        `version` 0 means the latest version as read now, sent explicitly: an owner who
        publishes a version just before the request lands cannot change what is run.

        Without `relayer` the call is open: any active relayer may serve it, none may reject
        it, and unserved it is refunded after its deadline. With `relayer` (an active
        relayer's address or account) only that relayer may serve it, and it may reject it
        (bad input, model error), which refunds the price at once.

        With `check_input` (the default) the input is first checked against the model file
        (`check_input()`, asking the relayer at URL `file_from` first for the file): a call
        that does not fit is refused before it is paid for."""
        data = encode_input(inputs)
        _, price, latest, active, _, _ = self._model_row(model_id)
        if not active:
            raise refusal("InferenceEscrow_ModelInactive", modelId=model_id)
        if version > latest:
            raise refusal("InferenceEscrow_UnknownVersion", modelId=model_id, version=version,
                           latestVersion=latest)
        version = version or latest
        designated = None if relayer is None else _address(relayer)
        if designated is not None and not self.relayer_info(designated).active:
            raise refusal("InferenceEscrow_NotActiveRelayer", account=designated)
        max_price = price if max_price is None else max_price
        if price > max_price:
            raise refusal("InferenceEscrow_PriceAboveMax", modelId=model_id, price=price,
                           maxPrice=max_price)
        credit = self.balance()
        if credit < price:
            raise refusal("InferenceEscrow_InsufficientCredit", account=self.address,
                           credit=credit, required=price)
        if check_input:
            self.check_input(model_id, version, data, relayer=designated, file_from=file_from)
        escrow = self.contracts.escrow
        if designated is None:
            tx = self._send(escrow.requestInference, model_id, version, data, max_price)
        else:
            tx = self._send(escrow.requestInferenceVia, model_id, version, data, max_price, designated)
        event = self._event(tx, escrow.InferenceRequested)
        from ape import chain

        deadline = chain.blocks[tx.block_number].timestamp + self.request_timeout
        return RequestInfo(event.requestId, event.caller, model_id, event.version, event.price,
                           bytes(event.inputHash), deadline, RequestStatus.PENDING, str(tx.txn_hash),
                           designated)

    def infer(self, model_id: int, inputs: Mapping[str, Any] | bytes, version: int = 0,
              max_price: int | None = None, timeout: float = 120.0, poll: float = 0.5,
              relayer_url: str | None = None,
              on_requested: Callable[[RequestInfo], None] | None = None,
              relayer: Any = None, check_input: bool = True, spot_check: Any = None) -> InferenceResult:
        """One paid call, start to end: pays (`request`), waits for a relayer to settle it,
        fetches the output and checks it against the chain (`fetch_output`), and returns the
        decoded outputs with the request and its transaction. `on_requested` is told the
        request as soon as it is paid for. Raises CallRejectedError (price refunded),
        CallRefundedError, or RequestWaitTimeoutError (refundable after the deadline).

        `relayer` (its URL, checked through its /healthz, or its address) designates the
        relayer: only it may serve the call, and it may reject it with a refund at once.
        Without it the call is open to every relayer and nobody can reject it. The output is
        fetched from `relayer_url`, else the designated relayer's URL, else the endpoint the
        fulfilling relayer registered. `check_input`: see `request`.

        `spot_check` (a share from 0 to 1, or a spotcheck.SpotChecker, which counts its checks
        across calls): the call is re-run locally that often and judged; an output found wrong
        is challenged at once (the bond comes from this account's tokens). The result's
        `spot_check` says what was found (None: not checked)."""
        data = encode_input(inputs)
        designated = None
        if relayer is not None:
            designated, url = self.resolve_relayer(relayer)
            relayer_url = relayer_url or url
        request = self.request(model_id, data, version=version, max_price=max_price,
                               relayer=designated, check_input=check_input, file_from=relayer_url)
        if on_requested is not None:
            on_requested(request)
        try:
            status = self.wait_for_request(request.id, timeout=timeout, poll=poll)
        except e.RequestWaitTimeoutError:
            error = e.RequestWaitTimeoutError(
                f"request {request.id} is still pending after {timeout:g}s: no relayer served it yet. "
                f"It can still be served until its deadline (unix time {request.deadline}); after "
                "that, take the price back with `refund`"
            )
            error.request = request
            raise error from None
        if status is RequestStatus.FULFILLED:
            verified = self.fetch_output(request.id, relayer_url, sent_input=data)
            result = InferenceResult(verified.output, request, verified)
            if spot_check is not None:
                checker = spot_check if isinstance(spot_check, SpotChecker) else SpotChecker(self, spot_check)
                result = replace(result, spot_check=checker.check_request(result))
            return result
        if status is RequestStatus.REJECTED:
            relayer, reason = self.rejection(request.id) or ("a relayer", e.RejectReason.OTHER)
            raise e.CallRejectedError(request.id, relayer, int(reason), request.price)
        raise e.CallRefundedError(request.id, request.price)

    def get_request(self, request_id: int) -> RequestInfo:
        caller, model_id, version, price, input_hash, deadline, status = self._call(
            self.contracts.escrow.getRequest, request_id)
        return RequestInfo(request_id, caller, int(model_id), int(version), int(price),
                           bytes(input_hash), int(deadline), RequestStatus(status))

    def request_statuses(self, request_ids: Sequence[int]) -> dict[int, RequestStatus]:
        """The status of each request, read in one batch (see `_batch_call`)."""
        rows = self._batch_call([(self.contracts.escrow.getRequest, (request_id,)) for request_id in request_ids])
        return {request_id: RequestStatus(row[-1]) for request_id, row in zip(request_ids, rows)}

    def refund(self, request_id: int) -> RequestInfo:
        """Takes back the price of a call nobody served before its deadline."""
        self._send(self.contracts.escrow.refund, request_id)
        return self.get_request(request_id)

    def wait_for_request(self, request_id: int, timeout: float = 120.0, poll: float = 1.0) -> RequestStatus:
        """Polls until the request ends; returns its end status."""
        give_up = time.monotonic() + timeout
        while True:
            status = self.get_request(request_id).status
            if status.ended:
                return status
            if time.monotonic() >= give_up:
                raise e.RequestWaitTimeoutError(
                    f"request {request_id} is still pending after {timeout:g} s; wait longer, "
                    "or refund it once its deadline has passed (Hub.refund)"
                )
            time.sleep(poll)

    @property
    def request_timeout(self) -> int:
        """Seconds from a request to its deadline."""
        if self._request_timeout is None:
            self._request_timeout = int(self._call(self.contracts.escrow.requestTimeout))
        return self._request_timeout

    relayer_fee_bps = _parameter("escrow", "relayerFeeBps", "The serving relayer's share of each fee now, in basis "
                                 "points (the owner may change it).")

    protocol_fee_bps = _parameter("escrow", "protocolFeeBps", "The treasury's share of each fee now, in basis points.")

    def next_request_id(self, account: Any = None) -> int:
        return self._call(self.contracts.escrow.nextRequestId, self._who(account))

    # ------------------------------------------------------------------ relayers

    def relayer_register(self, endpoint: str, bond: int) -> RelayerInfo:
        """Registers this account as a relayer serving at `endpoint`, bonding `bond` tokens."""
        relayers = self.contracts.relayers
        self._spend_tokens(relayers, bond, "bond")
        self._send(relayers.register, endpoint, bond)
        return self.relayer_info()

    def relayer_add_bond(self, amount: int) -> RelayerInfo:
        """Adds `amount` tokens to this relayer's bond (not while unbonding)."""
        info = self.relayer_info()
        if not info.registered:
            raise refusal("RelayerRegistry_NotRegistered", relayer=info.address)
        if info.unbonding:
            raise refusal("RelayerRegistry_Unbonding", relayer=info.address, unbondAt=info.unbond_at)
        relayers = self.contracts.relayers
        self._spend_tokens(relayers, amount, "add to its bond")
        self._send(relayers.addBond, amount)
        return self.relayer_info()

    def relayer_set_endpoint(self, endpoint: str) -> RelayerInfo:
        """Changes the HTTP endpoint this relayer advertises."""
        self._send(self.contracts.relayers.setEndpoint, endpoint)
        return self.relayer_info()

    def relayer_begin_unbond(self) -> RelayerInfo:
        """Starts leaving: inactive at once (no more calls served or settled), the bond
        withdrawable `unbond_delay` seconds later (`relayer_info().unbond_at`)."""
        self._send(self.contracts.relayers.beginUnbond)
        return self.relayer_info()

    def relayer_withdraw_bond(self) -> int:
        """Takes the whole bond back once the unbonding delay has passed, and ends the
        registration; returns the amount. Refused before the delay, with when it ends."""
        info = self.relayer_info()
        if not info.registered:
            raise refusal("RelayerRegistry_NotRegistered", relayer=info.address)
        if not info.unbonding:
            raise refusal("RelayerRegistry_NotUnbonding", relayer=info.address)
        if _chain_time() < info.unbond_at:
            raise refusal("RelayerRegistry_UnbondPending", relayer=info.address, unbondAt=info.unbond_at)
        relayers = self.contracts.relayers
        tx = self._send(relayers.withdrawBond)
        return int(self._event(tx, relayers.BondWithdrawn).amount)

    min_bond = _parameter("relayers", "minBond", "The smallest bond that makes a relayer active.")

    unbond_delay = _parameter("relayers", "unbondDelay", "Seconds from beginning to unbond to withdrawing the bond.")

    def relayer_info(self, account: Any = None) -> RelayerInfo:
        who = self._who(account)
        endpoint, bond, active, unbond_at = self._call(self.contracts.relayers.relayerInfo, who)
        return RelayerInfo(who, endpoint, int(bond), bool(active), int(unbond_at))

    def registered_relayers(self) -> list[str]:
        """Every account that ever registered as a relayer (RelayerRegistered events), first
        registration first; whether each is active now is `relayer_info(...).active`."""
        logs = self._logs(self.contracts.relayers, "RelayerRegistered")
        return list(dict.fromkeys(to_checksum_address(log.relayer) for log in logs))

    def settlement_gas(self, model_id: int, caller: Any = None) -> tuple[int, int]:
        """(gas used, number) of the transactions that settled receipts of `caller` (default:
        this account) for `model_id` (ReceiptSettled events)."""
        from ape import chain

        logs = self._logs(self.contracts.escrow, "ReceiptSettled",
                          {"caller": self._who(caller), "modelId": model_id})
        hashes = {log.transaction_hash for log in logs}
        with chain_errors():
            return sum(chain.provider.get_receipt(h).gas_used for h in hashes), len(hashes)

    def requests_since(self, from_block: int, to_block: int | None = None) -> Iterator[RequestedCall]:
        """The calls requested in blocks from_block..to_block (inclusive; default: the head)."""
        from ape import chain
        from ape.types import LogFilter

        escrow = self.contracts.escrow
        log_filter = LogFilter.from_event(event=escrow.InferenceRequested.abi,
                                          addresses=[escrow.address],
                                          start_block=from_block, stop_block=to_block)
        with chain_errors():
            for log in chain.provider.get_contract_logs(log_filter):
                yield RequestedCall(log.requestId, log.modelId, log.version, log.caller,
                                    log.price, bytes(log.inputHash), bytes(log.input),
                                    log.block_number)

    def sign_attestation(self, att: Attestation) -> bytes:
        """This account's 65-byte EIP-712 signature of `att` for this deployment's escrow."""
        message = self.domain.signable_message(att)
        signature = self.account.sign_message(message)
        if signature is None:
            raise e.ModelHubError(f"account {self.address} declined to sign the attestation")
        return signature.encode_rsv()

    def fulfill(self, att: Attestation, signature: bytes) -> FulfillOutcome:
        """Settles one call; raises (AttestationRefusedError, RequestExpiredError...) if it cannot."""
        self._send(self.contracts.escrow.fulfill, att.as_tuple(), signature)
        return FulfillOutcome(att.request_id, settled=True)

    def fulfill_batch(self, items: Sequence[tuple[Attestation, bytes]]) -> list[FulfillOutcome]:
        """Settles many calls in one transaction; an item that cannot settle is skipped, and
        the outcome of each item (in order) says which and why."""
        if not items:
            return []
        return self._batch("fulfillBatch", items, ("InferenceFulfilled", "InferenceSkipped"), lambda log, settled: (
            FulfillOutcome(log.requestId, settled=True) if settled
            else FulfillOutcome(log.requestId, settled=False, skip_reason=SkipReason(log.reason))))

    def reject(self, request_id: int, reason: RejectReason | int) -> None:
        """Declares a pending call unservable; the caller is refunded at once. Only the relayer
        a call was designated to may reject it (NotDesignatedRelayerError otherwise); open calls
        cannot be rejected at all (they are refunded after their deadline)."""
        self._send(self.contracts.escrow.reject, request_id, int(reason))

    def designated_relayer(self, request_id: int) -> str | None:
        """The relayer a pending request was designated to; None for an open request (or one
        that has ended: the escrow clears it then)."""
        return _optional_address(self._call(self.contracts.escrow.designatedRelayer, request_id))

    def resolve_relayer(self, relayer: Any) -> tuple[str, str]:
        """(address, URL) of a relayer given by URL (its /healthz must name an active relayer
        of this chain) or by address (it must be active; the URL is its registered endpoint)."""
        text = str(getattr(relayer, "address", relayer)).strip()
        if "://" in text:
            return resolve_relayer(self, text)
        if not is_address(text):
            raise e.RelayerMismatchError(f"{text!r} is neither a relayer's URL (http://...) nor "
                                         "its address (0x...)")
        info = self.relayer_info(text)
        if not info.active:
            raise e.NotActiveRelayerError(
                f"{info.address} is not an active relayer" + (
                    "" if info.endpoint else " (it is not registered)")
                + "; pick one from `modelhub relayer list`, or pass a relayer's URL",
                "InferenceEscrow_NotActiveRelayer", {"account": info.address})
        return info.address, info.endpoint.rstrip("/")

    # ------------------------------------------------------------------ discovery

    def list_models(self) -> list[ModelInfo]:
        count = self._call(self.contracts.registry.modelCount)
        return [self.get_model(model_id) for model_id in range(1, count + 1)]

    def get_model(self, model_id: int) -> ModelInfo:
        registry = self.contracts.registry
        owner, price, latest, active, name, metadata_uri = self._model_row(model_id)
        versions = []
        for version in range(1, latest + 1):
            digest, published_at = self._call(registry.getVersion, model_id, version)
            versions.append(ModelVersion(version, bytes(digest), digest_to_cid(bytes(digest)),
                                         int(published_at)))
        accounts, shares = self._call(registry.getPayees, model_id)
        stats = self.model_stats(model_id)
        return ModelInfo(model_id, owner, int(price), int(latest), bool(active), name,
                         metadata_uri, tuple(versions),
                         tuple(Payee(a, int(s)) for a, s in zip(accounts, shares)),
                         stats.calls, stats.revenue)

    def models_named(self, name: str, owner: Any = None) -> list[tuple[int, str]]:
        """(model id, owner now) of the models registered under `name` (names are not unique:
        anyone may register any name), only those `owner` owns now if given; oldest first."""
        ids = [int(log.modelId) for log in self._logs(self.contracts.registry, "ModelRegistered")
               if log.name == name]
        found = [(model_id, to_checksum_address(self._model_row(model_id)[0])) for model_id in ids]
        return [(model_id, now) for model_id, now in found if owner is None or now == _address(owner)]

    def versions_with_file(self, digest: bytes) -> list[tuple[int, int]]:
        """(model id, version) of every version whose file has `digest` (its sha-256), from the
        registry's events, oldest first."""
        return [(model, version) for model, version, file, _ in self._published_versions() if file == bytes(digest)]

    def versions_with_card(self, uri: str) -> list[tuple[int, int]]:
        """(model id, version) of every version whose metadata URI is `uri` (a card named by its
        content: `verdict.card_uri`), from the registry's events, oldest first."""
        return [(model, version) for model, version, _, card in self._published_versions() if card == uri]

    def _published_versions(self) -> list[tuple[int, int, bytes, str]]:
        """(model id, version, file digest, metadata URI) of every published version, oldest first."""
        registry = self.contracts.registry
        found = [(log.block_number, int(log.modelId), 1, bytes(log.artifactDigest), str(log.metadataURI))
                 for log in self._logs(registry, "ModelRegistered")]
        found += [(log.block_number, int(log.modelId), int(log.version), bytes(log.artifactDigest),
                   str(log.metadataURI)) for log in self._logs(registry, "VersionPublished")]
        return [row[1:] for row in sorted(found, key=lambda row: row[0])]

    def model_file(self, model_id: int, version: int = 0, store: ModelStore | None = None,
                   sources: Sequence[str] = (), limits: Limits | None = None) -> bytes:
        """The file of `model_id` at `version` (0: the latest), checked against its digest on
        chain: from `store` if it holds it, else fetched by CID from `sources` (relayer URLs or
        URL templates with {cid}) and then every registered relayer (kept in `store` when given).
        ArtifactNotFoundError says what each source did when none served it."""
        version = version or self._model_row(model_id)[2]
        digest = self.version_digest(model_id, version)
        if store is not None and store.has(digest_to_cid(digest)):
            return store.get_verified(digest)
        endpoints = [self.relayer_info(address).endpoint for address in self.registered_relayers()]
        candidates = []
        for text in [*sources, *endpoints]:
            try:
                candidates.append(Source.parse(text))
            except ValueError:
                continue  # an endpoint registered as something other than an http(s) URL
        data, _ = fetch_first(list(dict.fromkeys(candidates)), digest,
                              lambda source: fetch_bytes(source, digest, limits))
        if store is not None:
            store.put(data)
        return data

    def check_input(self, model_id: int, version: int, inputs: Mapping[str, Any] | bytes,
                    relayer: Any = None, file_from: str | None = None) -> None:
        """Checks `inputs` against the file of `model_id` at `version` (0: the latest) as a
        relayer would before serving: raises InvalidInputError naming the tensors the model
        expects, ModelFileError for a file no relayer can run, InputCheckUnavailableError when
        the file is not at hand. The file comes from the local cache (`model_files`), else from
        `model_file`, asking the relayer at URL `file_from`, then `relayer`'s endpoint, first."""
        version = version or self._model_row(model_id)[2]
        document = decode_input(encode_input(inputs))

        def fetch() -> bytes:
            first = [file_from, None if relayer is None else self.relayer_info(relayer).endpoint]
            return self._cached_file(model_id, version, [url for url in first if url])

        self._inputs().check(self.version_digest(model_id, version), document, fetch,
                             f"model {model_id} version {version}")

    def _cached_file(self, model_id: int, version: int, sources: Sequence[str] = ()) -> bytes:
        """The file of a version for the local cache (`model_files`): `model_file`, asking
        `sources` (relayer URLs) first, kept in the cache."""
        store = self._inputs().store
        return self.model_file(model_id, version, store=store, sources=sources, limits=Limits(max_size=store.max_size))

    def _inputs(self) -> InputCheck:
        if self._input_check is None:
            files = self._model_files
            self._input_check = InputCheck(files if isinstance(files, ModelStore) else ModelStore(
                Path(files) if files is not None else default_cache_folder() / "models"))
        return self._input_check

    def version_digest(self, model_id: int, version: int) -> bytes:
        """The sha-256 of the file of `model_id` at `version`. Published versions never change,
        so the answer is cached: the relayer asks this for every call it serves."""
        key = (model_id, version)
        digest = self._digests.get(key)
        if digest is None:
            digest, _ = self._call(self.contracts.registry.getVersion, model_id, version)
            digest = self._digests[key] = bytes(digest)
        return digest

    # ------------------------------------------------------------------ internals

    def _model_row(self, model_id: int) -> tuple:
        """getModel: (owner, price, latest version, active, name, metadata URI)."""
        owner, price, latest, active, name, uri = self._call(self.contracts.registry.getModel, model_id)
        return owner, int(price), int(latest), bool(active), name, uri

    def _prepare_artifact(self, path: str | Path, store: ModelStore | None, relayer_url: str | None,
                          card: bytes | None = None) -> tuple[bytes, bytes, str]:
        """Reads and checks a model file, stores it (and its card, if any) locally if asked and
        checks that the relayer answers; (data, digest, cid)."""
        data = read_model_file(path)
        digest = file_digest(data)
        if store is not None:
            store.put(data)
            if card is not None:
                store.put(card)
        if relayer_url is not None:
            RelayerClient(relayer_url).check_reachable()
        return data, digest, digest_to_cid(digest)

    @staticmethod
    def _post_registered(relayer_url: str | None, files: Sequence[bytes | None], done: str) -> None:
        """Uploads a just-registered version's files (its model file, its card) to the relayer;
        a failure says what is done already."""
        if relayer_url is None:
            return
        try:
            for data in files:
                if data is not None:
                    post_artifact(relayer_url, data)
        except e.ArtifactUploadError as error:
            raise e.ArtifactUploadError(
                f"{done}, but {error}; upload it again (`modelhub models push FILE`, "
                "modelhub.relayer_client.post_artifact, or POST /v1/artifacts) or to another relayer") from None

    def _spend_tokens(self, spender: Any, amount: int, purpose: str) -> None:
        """Checks the wallet holds `amount` tokens and approves `spender` for them if needed."""
        token = self.contracts.token
        held = self.token_balance()
        if held < amount:
            hint = ("get test tokens with Hub.faucet" if self.deployment.chain_id in DEV_CHAIN_IDS
                    else "transfer fee tokens to it first")
            raise e.InsufficientTokenBalanceError(
                f"{self.address} holds {held} fee tokens but wants to {purpose} {amount}; {hint}",
                inputs={"account": self.address, "balance": held, "needed": amount})
        if self._call(token.allowance, self.address, spender.address) < amount:
            self._send(token.approve, spender.address, amount)

    def _who(self, account: Any) -> str:
        return self.address if account is None else _address(account)

    def _send(self, method: Any, *args: Any, gas_margin: float = 0.0) -> Any:
        """Sends `method(*args)` as this hub; with `gas_margin`, the gas limit is the estimate
        plus that share (for calls whose gas depends on the block they land in)."""
        with chain_errors():
            call, call_args = method, args
            if self.wallet is not None:
                # The wallet makes the call: msg.sender is the wallet, the owner pays the gas.
                call, call_args = self.wallet.execute, (method.contract.address, method.encode_input(*args))
            txn = {}
            if gas_margin:
                txn["gas"] = int(call.estimate_gas_cost(*call_args, sender=self.account) * (1 + gas_margin))
            return call(*call_args, sender=self.account, **txn)

    def _batch(self, function: str, items: Sequence[tuple[Any, bytes]], events: tuple[str, str],
               outcome: Callable[[Any, bool], Any]) -> list:
        """Sends the escrow's batch `function` of (struct, signature) items and reads back the
        outcome of each: every item emits exactly one of `events` (settled, skipped), in order."""
        escrow = self.contracts.escrow
        tx = self._send(getattr(escrow, function), [struct.as_tuple() for struct, _ in items],
                        [signature for _, signature in items])
        outcomes = [outcome(log, log.event_name == events[0]) for log in tx.events
                    if log.contract_address == escrow.address and log.event_name in events]
        if len(outcomes) != len(items):
            raise e.ModelHubError(
                f"{function} logged {len(outcomes)} outcomes for {len(items)} items: the "
                "escrow at this address is not the InferenceEscrow this SDK knows"
            )
        return outcomes

    def _call(self, method: Any, *args: Any) -> Any:
        with chain_errors():
            return method(*args)

    def _simulate(self, method: Any, *args: Any) -> Any:
        """`method(*args)` run as an eth_call from this hub's address: what sending it would do,
        without sending (a revert is the SDK's error, and costs nothing)."""
        with chain_errors():
            return method.call(*args, sender=self.address)

    def _batch_call(self, calls: Sequence[tuple[Any, tuple]]) -> list[tuple]:
        """Each (view method, arguments) read at the latest block: in one JSON-RPC batch when
        the node speaks HTTP; one call each otherwise, and for an item the batch did not answer."""
        from ape import chain
        from eth_abi import decode as abi_decode

        answers: list[bytes | None] = [None] * len(calls)
        uri = getattr(chain.provider, "http_uri", None)
        if calls and isinstance(uri, str) and uri.startswith("http"):
            batch = [{"jsonrpc": "2.0", "id": index, "method": "eth_call", "params": [
                {"to": str(method.contract.address), "data": "0x" + bytes(method.encode_input(*args)).hex()}, "latest"]}
                for index, (method, args) in enumerate(calls)]
            try:
                replies = requests.post(uri, json=batch, timeout=30).json()
            except (requests.RequestException, ValueError):
                replies = []
            for reply in replies if isinstance(replies, list) else []:
                index = reply.get("id") if isinstance(reply, dict) else None
                if isinstance(index, int) and 0 <= index < len(calls) and isinstance(reply.get("result"), str):
                    answers[index] = bytes.fromhex(reply["result"].removeprefix("0x"))
        rows = []
        for (method, args), answer in zip(calls, answers):
            types = [output.canonical_type for output in method.abis[0].outputs]
            if answer is not None and len(answer) >= 32 * len(types):
                rows.append(tuple(abi_decode(types, answer)))
            else:
                value = self._call(method, *args)
                rows.append(tuple(value) if len(types) > 1 else (value,))
        return rows

    @staticmethod
    def _event(tx: Any, event_type: Any) -> Any:
        # Read back from the receipt rather than trusting return values (not kept on all nodes).
        return tx.events.filter(event_type)[0]

    # ------------------------------------------------------------------ outputs (CLI)

    token_symbol = _parameter("token", "symbol", "The fee token's symbol (tOPG on dev chains).", str)

    token_decimals = _parameter("token", "decimals",
                                "The fee token's decimals: base units per token = 10 ** token_decimals.")

    def requested_call(self, request_id: int) -> RequestedCall:
        """The `InferenceRequested` event of a request: its model, resolved version and input,
        readable after the request has ended (when `get_request` reads as zero)."""
        logs = self._request_logs("InferenceRequested", request_id)
        if not logs:
            raise e.RequestNotFoundError(
                f"no request has id {request_id} on this deployment; use the id request() returned",
                error_name="InferenceEscrow_UnknownRequest", inputs={"requestId": request_id})
        log = logs[0]
        return RequestedCall(log.requestId, log.modelId, log.version, log.caller, log.price,
                             bytes(log.inputHash), bytes(log.input), log.block_number)

    def fulfilled_by(self, request_id: int) -> tuple[str, bytes] | None:
        """(relayer, outputHash) of the `InferenceFulfilled` event of a request; None if it
        has not been fulfilled."""
        logs = self._request_logs("InferenceFulfilled", request_id)
        return (to_checksum_address(logs[0].relayer), bytes(logs[0].outputHash)) if logs else None

    def rejection(self, request_id: int) -> tuple[str, RejectReason | int] | None:
        """(relayer, reason) of the `InferenceRejected` event of a request; None if it was not
        rejected."""
        logs = self._request_logs("InferenceRejected", request_id)
        if not logs:
            return None
        reason = int(logs[0].reason)
        known = RejectReason(reason) if reason in RejectReason._value2member_map_ else reason
        return to_checksum_address(logs[0].relayer), known

    def fetch_output(self, request_id: int, relayer_url: str | None = None,
                     sent_input: bytes | None = None) -> VerifiedOutput:
        """The output of a fulfilled call from its relayer (GET /v1/requests/{id}), checked:
        the canonical encoding of the output hashes to the outputHash settled on chain, the
        attestation matches the request (model, version, input hash; and `sent_input` when
        given), and its signature is the fulfilling relayer's. `relayer_url` defaults to the
        endpoint that relayer registered. Raises OutputVerificationError otherwise."""
        fulfilled = self.fulfilled_by(request_id)
        if fulfilled is None:
            raise e.RequestNotPendingError(
                f"request {request_id} has not been fulfilled, so it has no output; its status "
                f"is {self.get_request(request_id).status.name.lower()}")
        relayer, settled_hash = fulfilled
        call = self.requested_call(request_id)
        url = relayer_url or self.relayer_info(relayer).endpoint
        answer = RelayerClient(url).request_output(request_id)

        def refuse(what: str) -> e.OutputVerificationError:
            return e.OutputVerificationError(
                f"the output of request {request_id} from the relayer at {url} fails "
                f"verification: {what}; do not trust it")

        signed = SignedAnswer.parse(answer, refuse)
        expected = Attestation(request_id, call.model_id, call.version, call.input_hash, signed.output_hash)
        signed.check(expected, relayer, self.domain, refuse, settled_hash=settled_hash,
                     paid_by=f"request {request_id} (its model, version and input hash)")
        if sent_input is not None and input_hash(sent_input) != call.input_hash:
            raise refuse("the request's input hash is not the hash of the input you sent")
        return VerifiedOutput(request_id, signed.output, signed.output_bytes, signed.output_hash,
                              signed.attestation, signed.signature, relayer, url)

    def _request_logs(self, event_name: str, request_id: int) -> list:
        """The escrow's `event_name` logs for `request_id` (an indexed topic), oldest first."""
        return self._logs(self.contracts.escrow, event_name, {"requestId": request_id})

    def caller_requests(self, caller: Any = None, model_id: int | None = None, limit: int | None = None,
                        span: int = REQUEST_SCAN_SPAN) -> list[RequestRecord]:
        """The on-chain calls `caller` (default: this account) requested, of `model_id` if
        given, newest first, at most `limit`, each with how it ended (its events). Read from
        the chain's logs, from the head back to the deployment's start block in spans of `span`
        blocks until `limit` are found: a full scan on a long chain is slow (an index is the
        tool there, `modelhub index`); on a dev chain it is quick."""
        from ape import chain

        escrow = self.contracts.escrow
        topics = {"caller": self._who(caller), **({} if model_id is None else {"modelId": model_id})}
        with chain_errors():
            stop = chain.blocks.height
        found: list = []
        while stop >= self.deployment.start_block and (limit is None or len(found) < limit):
            first = max(self.deployment.start_block, stop - span + 1)
            found += reversed(self._logs(escrow, "InferenceRequested", topics, first, stop))
            stop = first - 1
        found = found[:limit]
        if not found:
            return []
        since = min(log.block_number for log in found)
        ends: dict[str, dict[int, Any]] = {}
        for event_name in ("InferenceFulfilled", "InferenceRejected", "InferenceRefunded"):
            ends[event_name] = {}
            for chunk in range(0, len(found), 200):  # bounded topic lists: nodes refuse long ones
                ids = [log.requestId for log in found[chunk:chunk + 200]]
                for log in self._logs(escrow, event_name, {"requestId": ids}, since):
                    ends[event_name][int(log.requestId)] = log
        times: dict[int, int] = {}
        records = []
        for log in found:
            request_id = int(log.requestId)
            block = int(log.block_number)
            if block not in times:
                with chain_errors():
                    times[block] = int(chain.blocks[block].timestamp)
            record = RequestRecord(request_id, int(log.modelId), int(log.version), int(log.price),
                                   RequestStatus.PENDING, block, times[block], str(log.transaction_hash))
            if fulfilled := ends["InferenceFulfilled"].get(request_id):
                record = replace(record, status=RequestStatus.FULFILLED, relayer=to_checksum_address(fulfilled.relayer),
                                 output_hash=bytes(fulfilled.outputHash))
            elif rejected := ends["InferenceRejected"].get(request_id):
                record = replace(record, status=RequestStatus.REJECTED, relayer=to_checksum_address(rejected.relayer),
                                 reason=int(rejected.reason))
            elif request_id in ends["InferenceRefunded"]:
                record = replace(record, status=RequestStatus.REFUNDED)
            else:
                record = replace(record, relayer=self.designated_relayer(request_id),
                                 deadline=self.get_request(request_id).deadline)
            records.append(record)
        return records

    def _logs(self, contract: Any, event_name: str, topics: dict[str, Any] | None = None,
              start_block: int | None = None, stop_block: int | None = None) -> list:
        """`contract`'s `event_name` logs from `start_block` (default: the deployment's start
        block) to `stop_block` (default: the head), filtered on the indexed `topics`, oldest first."""
        from ape import chain
        from ape.types import LogFilter

        start = self.deployment.start_block if start_block is None else start_block
        log_filter = LogFilter.from_event(event=getattr(contract, event_name).abi, search_topics=topics or {},
                                          addresses=[contract.address], start_block=start, stop_block=stop_block)
        with chain_errors():
            return list(chain.provider.get_contract_logs(log_filter))


# --- helpers -----------------------------------------------------------------------------------


def _card_and_uri(metadata_uri: str, card: bytes | str | Path | None) -> tuple[str, bytes | None]:
    """(the metadata URI to register, the card's bytes): `metadata_uri` as given without a card;
    with one, the URI naming its bytes, once they read as a card jurors can honour."""
    if card is None:
        return metadata_uri, None
    if metadata_uri:
        raise ValueError("give a model card or a metadata URI, not both: a card's URI is its content id")
    name = f"the model card {card}" if isinstance(card, (str, Path)) else "the model card"
    try:
        data = Path(card).read_bytes() if isinstance(card, (str, Path)) else bytes(card)
    except OSError as error:
        raise e.InvalidModelCardError("unreadable", f"cannot read {name}: {error.strerror}") from None
    try:
        read_card(data)
    except e.InvalidModelCardError as error:
        raise e.InvalidModelCardError(error.kind, f"{name} cannot be registered: {error.reason}; fix it "
                                      "first, since jurors would judge this version with the default "
                                      "tolerance") from None
    return card_uri(data), data


def _address(account: Any) -> str:
    return to_checksum_address(getattr(account, "address", account))


_ZERO_ADDRESS = "0x" + "00" * 20


def _chain_time() -> int:
    """Now, as the next block will see it: the head's time, or the wall clock if later."""
    from ape import chain

    with chain_errors():
        return max(int(chain.blocks.head.timestamp), int(time.time()))


def _wallet_instance(wallet: Any) -> Any:
    """An Ape instance of the contract wallet at `wallet`, driven through `execute(address,bytes)`."""
    from ape import chain

    from .contracts import contract_type

    address = _address(wallet)
    with chain_errors():
        if not chain.provider.get_code(address):
            raise e.NotAContractWalletError(
                f"no contract at {address}: a wallet hub needs the address of a deployed "
                "contract wallet that its account owns")
        return chain.contracts.instance_at(address, contract_type=contract_type("TestWallet"))


def _optional_address(value: Any) -> str | None:
    """A checksummed address, or None for the zero address."""
    address = to_checksum_address(value)
    return None if int(address, 16) == 0 else address
