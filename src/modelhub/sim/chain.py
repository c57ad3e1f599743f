"""The chain mode: the simulated market on the deployed contracts, on an anvil of its own.
Every deposit, reservation, receipt (signed per call), batch settlement, release and withdrawal
goes through the SDK's `Hub`, and each outcome is checked against the fast ledger's.

The agents decide from the fast ledger's figures, which the chain confirms step by step; the
balances at the end are read from the chain, so a run that ends equal to the fast mode's shows
the fast mode's money rules are the contracts' own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..deployments import deploy
from ..devchain import Anvil, rpc
from ..errors import ModelHubError
from ..hub import Hub
from ..typed_data import KeySigner, Receipt, opening_receipt
from .ledger import Ledger, Settlement
from .market import DAY, PHASE_ROOM
from .scenario import Scenario

GAS_MONEY = 10**24  # wei of ether each agent's account gets for gas
BATCH = 100  # receipts per settleReceipts transaction
MODEL_FILE = Path("examples/iris/iris.onnx")  # every simulated model registers this file


class ChainDivergedError(ModelHubError):
    """The contracts did something else than the fast ledger computed: the fast mode is wrong."""


@dataclass
class Agent:
    """One simulated account: its Ape account, its Hub, and its receipt signer (callers)."""

    account: Any
    hub: Hub
    signer: KeySigner | None = None

    @property
    def address(self) -> str:
        return self.hub.address


class ChainLedger(Ledger):
    """The fast ledger's bookkeeping, with every operation also made on chain and checked."""

    def __init__(self, scenario: Scenario, models: int, relayers: int, url: str, deployment: Any,
                 treasury: Any, model_file: Path) -> None:
        super().__init__(scenario.protocol, models, relayers, scenario.uploaders.payee_shares)
        self.url = url
        self.deployment = deployment
        self.chain_id = deployment.chain_id
        self.escrow = deployment.inference_escrow
        self.model_file = model_file
        self.treasury = self._agent(treasury)
        head = self._head_time()
        self.origin = (head // DAY + 2) * DAY  # the simulation's day 0 starts at a UTC midnight ahead
        self.model_agents: dict[int, list[Agent]] = {}
        self.model_ids: dict[int, int] = {}
        self.relayer_agents: dict[int, Agent] = {}
        self.caller_agents: list[Agent] = []
        self._receipts: dict[tuple[int, int], tuple[Receipt, bytes]] = {}
        self._settled: dict[tuple[int, int], Receipt] = {}
        self.receipts_signed = 0
        self._first_block = self._head_block()
        self._empty_blocks = 0  # mined by _at to move the clock; every other block is one transaction

    # ------------------------------------------------------------------ accounts and time

    def _agent(self, account: Any = None, signs: bool = False) -> Agent:
        from ape import accounts

        if account is None:
            account = accounts.test_accounts.generate_test_account()
            rpc(self.url, "anvil_setBalance", account.address, hex(GAS_MONEY))
        signer = KeySigner(account.private_key) if signs else None
        return Agent(account, Hub(self.deployment, account), signer)

    def _head_time(self) -> int:
        return int(rpc(self.url, "eth_getBlockByNumber", "latest", False)["timestamp"], 16)

    def _head_block(self) -> int:
        return int(rpc(self.url, "eth_blockNumber"), 16)

    @property
    def transactions(self) -> int:
        """Transactions sent since the deployment (anvil mines each in a block of its own)."""
        return self._head_block() - self._first_block - self._empty_blocks

    def _at(self, time: int) -> None:
        """Mines an empty block at the simulation's `time`, unless the chain is there already;
        the transactions that follow take one second each."""
        target = self.origin + time
        head = self._head_time()
        if target > head:
            rpc(self.url, "evm_mine", target)
            self._empty_blocks += 1
        elif head - target >= PHASE_ROOM:
            raise ChainDivergedError(f"more than {PHASE_ROOM} transactions in one phase of a day: the chain "
                                     "mode is meant for small scenarios")

    # ------------------------------------------------------------------ the registry

    def register_model(self, model: int, price: int, time: int) -> None:
        self._at(time)
        payees = [self._agent() for _ in self.shares]
        upload = payees[0].hub.upload_model(self.model_file, f"sim-model-{model}", price)
        expected = len(self.model_ids) + 1
        if upload.model_id != expected:
            raise ChainDivergedError(f"model {model} registered as id {upload.model_id}, expected {expected}")
        if len(self.shares) > 1:
            payees[0].hub.set_payees(upload.model_id, [(p.address, s) for p, s in zip(payees, self.shares)])
        self.model_agents[model] = payees
        self.model_ids[model] = upload.model_id
        super().register_model(model, price, time)

    def set_price(self, model: int, price: int, time: int) -> None:
        self._at(time)
        self.model_agents[model][0].hub.set_price(self.model_ids[model], price)
        super().set_price(model, price, time)

    def deactivate(self, model: int, time: int) -> None:
        self._at(time)
        self.model_agents[model][0].hub.set_active(self.model_ids[model], False)
        super().deactivate(model, time)

    # ------------------------------------------------------------------ relayers and callers

    def bond_relayer(self, relayer: int, bond: int, time: int) -> None:
        self._at(time)
        agent = self._agent()
        agent.hub.faucet(bond)
        agent.hub.relayer_register(f"http://relayer-{relayer}.sim.invalid", bond)
        self.relayer_agents[relayer] = agent
        super().bond_relayer(relayer, bond, time)

    def add_callers(self, relayers: np.ndarray) -> None:
        self.caller_agents += [self._agent(signs=True) for _ in relayers]
        super().add_callers(relayers)

    def _relayer_of(self, caller: int) -> Agent:
        return self.relayer_agents[int(self.caller_relayer[caller])]

    def top_up(self, callers: np.ndarray, amounts: np.ndarray, time: int) -> None:
        self._at(time)
        for caller, amount in zip(callers, amounts):
            hub = self.caller_agents[caller].hub
            hub.faucet(int(amount))
            hub.deposit_and_reserve(self._relayer_of(caller).address, int(amount))
        super().top_up(callers, amounts, time)

    def pay(self, callers: np.ndarray, models: np.ndarray, during_calls: np.ndarray, during_price: np.ndarray,
            after_calls: np.ndarray, after_price: np.ndarray, deadline: int) -> np.ndarray:
        owed = super().pay(callers, models, during_calls, during_price, after_calls, after_price, deadline)
        for row, (caller, model) in enumerate(zip(callers, models)):
            key = (int(caller), int(model))
            agent = self.caller_agents[key[0]]
            receipt = self._receipts[key][0] if key in self._receipts else self._settled.get(key) or opening_receipt(
                agent.address, self._relayer_of(key[0]).address, self.model_ids[key[1]])
            signature = b""
            prices = [int(during_price[row])] * int(during_calls[row]) + [int(after_price[row])] * int(after_calls[row])
            for price in prices:  # one receipt per call, as a caller signs them
                receipt = receipt.next(price, self.origin + deadline)
                signature = agent.signer.sign_receipt(receipt, self.chain_id, self.escrow)
            self.receipts_signed += len(prices)
            self._receipts[key] = (receipt, signature)
        return owed

    def settle(self, only: np.ndarray | None, time: int) -> Settlement:
        settled = super().settle(only, time)
        if not len(settled):
            return settled
        self._at(time)
        for relayer in np.unique(settled.relayers):
            rows = np.flatnonzero(settled.relayers == relayer)
            hub = self.relayer_agents[int(relayer)].hub
            for chunk in range(0, len(rows), BATCH):
                batch = rows[chunk: chunk + BATCH]
                keys = [(int(settled.callers[row]), int(settled.models[row])) for row in batch]
                outcomes = hub.settle_receipts([self._receipts[key] for key in keys])
                for key, row, outcome in zip(keys, batch, outcomes):
                    if not outcome.settled or outcome.paid != settled.paid[row]:
                        raise ChainDivergedError(f"channel {key} settled as {outcome}; the fast ledger paid "
                                                 f"{settled.paid[row]}")
                    self._settled[key] = self._receipts.pop(key)[0]
        return settled

    def announce_release(self, callers: np.ndarray, time: int) -> None:
        self._at(time)
        for caller in callers:
            self.caller_agents[caller].hub.announce_release(self._relayer_of(caller).address,
                                                            int(self.caller_reserved[caller]))
        super().announce_release(callers, time)

    def release_due(self, time: int, margin: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        due, released, withdrawn = super().release_due(time, margin)
        if len(due):
            self._at(time)
        for caller, amount, out in zip(due, released, withdrawn):
            hub = self.caller_agents[caller].hub
            moved = hub.release(self._relayer_of(caller).address)
            if moved != amount:
                raise ChainDivergedError(f"caller {caller} released {moved}; the fast ledger released {amount}")
            if out:
                hub.withdraw(int(out))
        return due, released, withdrawn

    def withdraw_earnings(self, payees: np.ndarray, relayers: np.ndarray, treasury: bool, time: int) -> None:
        self._at(time)
        expected = [(agent, self.payee_earnings[model, index]) for model in payees
                    for index, agent in enumerate(self.model_agents[int(model)])]
        expected += [(self.relayer_agents[int(r)], self.relayer_earnings[r]) for r in relayers]
        if treasury:
            expected.append((self.treasury, self.treasury_earnings))
        for agent, amount in expected:
            if amount:  # withdrawEarnings refuses an account with nothing to withdraw
                paid = agent.hub.withdraw_earnings()
                if paid != amount:
                    raise ChainDivergedError(f"{agent.address} withdrew {paid}; the fast ledger held {amount}")
        super().withdraw_earnings(payees, relayers, treasury, time)

    # ------------------------------------------------------------------ the chain's balances

    def chain_balances(self, models: list[int], relayers: list[int]) -> dict:
        """`Ledger.balances`, read from the contracts; `minted` is every token the chain holds for
        the simulation (wallets, the escrow and the relayer registry)."""
        hub = self.treasury.hub
        callers = self.caller_agents

        def reserved(index: int) -> int:
            return hub.reservation(callers[index].address, self._relayer_of(index).address).reserved

        payees = [self.model_agents[m] for m in models]
        bonded = [self.relayer_agents[r] for r in relayers]
        balances = {
            "treasury": {"wallet": hub.token_balance(), "earnings": hub.earnings()},
            "callers": {"wallet": [hub.token_balance(a.address) for a in callers],
                        "credit": [hub.balance(a.address) for a in callers],
                        "reserved": [reserved(i) for i in range(len(callers))]},
            "payees": {"wallet": [[hub.token_balance(a.address) for a in row] for row in payees],
                       "earnings": [[hub.earnings(a.address) for a in row] for row in payees]},
            "relayers": {"wallet": [hub.token_balance(a.address) for a in bonded],
                         "earnings": [hub.earnings(a.address) for a in bonded],
                         "bond": [hub.relayer_info(a.address).bond for a in bonded]},
            "models": {"calls": [hub.model_stats(self.model_ids[m]).calls for m in models],
                       "revenue": [hub.model_stats(self.model_ids[m]).revenue for m in models]},
        }
        wallets = (balances["treasury"]["wallet"] + sum(balances["callers"]["wallet"])
                   + sum(map(sum, balances["payees"]["wallet"])) + sum(balances["relayers"]["wallet"]))
        contracts = hub.token_balance(self.deployment.inference_escrow) + hub.token_balance(self.deployment.relayer_registry)
        return {"minted": wallets + contracts, **balances}


@contextmanager
def deployed(scenario: Scenario, models: int, relayers: int, project_root: Path | None = None) -> Iterator[ChainLedger]:
    """An anvil of its own with Model Hub deployed by the scenario's protocol parameters, and a
    ledger on it; everything is stopped at the end. Needs the compiled project (run from the
    checkout), as every Ape command does."""
    from ape import accounts, networks, project
    from ape.logging import logger

    root = project_root or Path(project.path)
    model_file = root / MODEL_FILE
    if not model_file.is_file():
        raise ModelHubError(f"the chain mode registers {MODEL_FILE} as every model's file, and {model_file} is "
                            "missing: run from the Model Hub checkout")
    level = logger.level
    logger.set_level("WARNING")  # one "Confirmed" line per transaction would drown the progress lines
    try:
        with Anvil() as anvil, networks.parse_network_choice(anvil.url):
            rpc(anvil.url, "anvil_setBlockTimestampInterval", 1)
            deployer, treasury = accounts.test_accounts[0], accounts.test_accounts[1]
            deployment = deploy(deployer, treasury=treasury.address, params=scenario.protocol.deploy_params())
            yield ChainLedger(scenario, models, relayers, anvil.url, deployment, treasury, model_file)
    finally:
        logger.set_level(level)
