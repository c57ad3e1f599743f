"""What every `modelhub` command shares: the --network/--account/--json options, connecting to
the hub, token amounts, output (human or one JSON object) and errors turned into exit codes.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

import click
import requests
from ape.cli import ConnectedProviderCommand, network_option
from ape.cli.choices import AccountAliasPromptChoice

from modelhub import errors as e
from modelhub.deployments import FILE_VARIABLE

EXIT_OK = 0
EXIT_USER_ERROR = 1  # a ModelHubError: the message says what to do
EXIT_USAGE = 2  # click: bad options or arguments
EXIT_UNREACHABLE = 3  # no chain at the network given
EXIT_TIMEOUT = 4  # gave up waiting for a request

LOCAL_CHAIN_URL = "http://127.0.0.1:8545"
DEFAULT_DECIMALS = 18
BASE_SUFFIX = "wei"

EXIT_CODES_HELP = f"""\b
Exit codes:
  {EXIT_OK}  success
  {EXIT_USER_ERROR}  an error the message explains (unknown model, not enough credit, ...)
  {EXIT_USAGE}  bad usage (unknown option, missing argument)
  {EXIT_UNREACHABLE}  the chain cannot be reached
  {EXIT_TIMEOUT}  timed out waiting for a request to be served
"""

AMOUNTS_HELP = f"""\b
Amounts are in fee tokens with up to 18 decimals ("1.5" = 1.5 tOPG);
append "{BASE_SUFFIX}" for token base units ("1500{BASE_SUFFIX}" = 1500 base units).
"""


class HubError(e.ModelHubError):
    """An error found by the CLI itself, with a message for the user."""


# --- amounts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Amount:
    """An amount as typed: a number of tokens, or base units (the `wei` suffix)."""

    text: str
    tokens: Decimal | None = None
    base: int | None = None

    def to_base(self, decimals: int) -> int:
        if self.base is not None:
            return self.base
        assert self.tokens is not None
        units = self.tokens * (Decimal(10) ** decimals)
        if units != units.to_integral_value():
            raise HubError(
                f"{self.text} has more decimals than the fee token's {decimals}; give fewer "
                f"decimals, or base units as <integer>{BASE_SUFFIX}"
            )
        return int(units)


class AmountType(click.ParamType):
    name = "amount"

    def convert(self, value: Any, param: Any, ctx: Any) -> Amount:
        if isinstance(value, Amount):
            return value
        text = str(value).strip()
        if text.lower().endswith(BASE_SUFFIX):
            digits = text[: -len(BASE_SUFFIX)].strip()
            if not digits.isdigit():
                self.fail(f"{text!r}: base units are a whole number, e.g. 1500{BASE_SUFFIX}", param, ctx)
            return Amount(text, base=int(digits))
        try:
            tokens = Decimal(text)
        except InvalidOperation:
            self.fail(f"{text!r} is not an amount: write tokens (1.5) or base units "
                      f"(1500{BASE_SUFFIX})", param, ctx)
        if not tokens.is_finite() or tokens < 0:
            self.fail(f"{text!r}: an amount is a finite number of at least 0", param, ctx)
        return Amount(text, tokens=tokens)


AMOUNT = AmountType()


def format_tokens(base: int, decimals: int) -> str:
    """Base units as a decimal number of tokens, without trailing zeros: 1.5, 0.001, 10."""
    whole, frac = divmod(int(base), 10**decimals)
    if not frac:
        return str(whole)
    return f"{whole}.{str(frac).rjust(decimals, '0').rstrip('0')}"


# --- the session: connection, account, output ----------------------------------------------


class Session:
    """One command's connection to the hub and its output mode."""

    def __init__(self, account: Any, as_json: bool) -> None:
        self._account = account
        self.as_json = as_json
        self._hub = None
        self._token: tuple[str, int] | None = None

    @property
    def hub(self):
        if self._hub is None:
            from modelhub.hub import Hub

            self._hub = Hub.connect(self.account)
        return self._hub

    @property
    def account(self) -> Any:
        if self._account is None:
            from ape import accounts, chain

            from modelhub.deployments import DEV_CHAIN_IDS

            if chain.chain_id not in DEV_CHAIN_IDS:
                raise click.UsageError(
                    f"chain {chain.chain_id} is not a dev chain: choose who signs with "
                    "--account <alias> (see `ape accounts list`)"
                )
            self._account = accounts.test_accounts[0]
        return self._account

    # amounts

    def token(self) -> tuple[str, int]:
        """(symbol, decimals) of the fee token."""
        if self._token is None:
            hub = self.hub
            try:
                symbol = hub.token_symbol
            except e.ModelHubError:
                symbol = "tokens"
            try:
                decimals = hub.token_decimals
            except e.ModelHubError:
                decimals = DEFAULT_DECIMALS
            self._token = (symbol, decimals)
        return self._token

    def base(self, amount: Amount | None) -> int | None:
        return None if amount is None else amount.to_base(self.token()[1])

    def money(self, base: int) -> str:
        """`1.5 tOPG (1500000000000000000)`."""
        symbol, decimals = self.token()
        return f"{format_tokens(base, decimals)} {symbol} ({int(base)})"

    def money_json(self, base: int) -> str:
        """Amounts in JSON: base units as a decimal string (they overflow JSON numbers)."""
        return str(int(base))

    # output

    def emit(self, data: dict, human: Callable[[], None] | str | None = None) -> None:
        """The command's result: one JSON object with --json, else the human form."""
        if self.as_json:
            click.echo(json.dumps(data, indent=None, sort_keys=False))
        elif callable(human):
            human()
        elif human is not None:
            click.echo(human)

    def note(self, line: str) -> None:
        """Progress for humans, on stderr; silent with --json."""
        if not self.as_json:
            click.echo(line, err=True)


def print_table(rows: list[tuple[str, ...]]) -> None:
    """Rows of cells in aligned columns; the first row is the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _chain_id_at(url: str) -> int | None:
    """The chain id of the node at `url`, or None if nothing answers there."""
    try:
        reply = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId",
                                         "params": []}, timeout=3)
        return int(reply.json()["result"], 16)
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return None


NETWORK_CHOICE_KEY = "modelhub_network_choice"


def _remember_network_choice(ctx: click.Context, param: Any, value: Any) -> Any:
    # Ape has already made a provider of the choice: a node URL becomes a "custom" network's
    # provider holding the URL in its settings.
    if value is not None and not isinstance(value, str):
        url = (getattr(value, "provider_settings", None) or {}).get("uri")
        ctx.meta[NETWORK_CHOICE_KEY] = url or "named"
    else:
        ctx.meta[NETWORK_CHOICE_KEY] = value
    return value


class HubCommand(ConnectedProviderCommand):
    """A command connected to the chain of --network. Without --network: the local chain at
    127.0.0.1:8545 if one runs, never a throwaway chain of Ape's own. A URL of a dev chain
    (anvil) is reached through Ape's foundry provider, which decodes anvil's reverts."""

    def invoke(self, ctx: click.Context) -> Any:
        from ape.cli.options import NETWORK_META_KEY

        choice = ctx.meta.get(NETWORK_CHOICE_KEY)
        if self.callback is not None and (choice is None or "://" in str(choice)):
            url = LOCAL_CHAIN_URL if choice is None else str(choice)
            chain_id = _chain_id_at(url)
            if chain_id is None:
                raise e.ChainUnreachableError(
                    f"no local chain at {url}: start one with `modelhub up` or pass --network"
                    if choice is None else
                    f"no chain answers at {url}; check that the node runs and the URL is right"
                )
            from modelhub.deployments import DEV_CHAIN_IDS

            if chain_id in DEV_CHAIN_IDS:
                from ape import networks

                # The provider must connect to this node, never start one of its own.
                os.environ.pop("APE_FOUNDRY_HOST", None)
                provider = networks.get_provider_from_choice(
                    "ethereum:local:foundry", provider_settings={"host": url})
                ctx.meta[NETWORK_META_KEY] = {"provider": provider}
            elif choice is None:
                from ape import networks

                ctx.meta[NETWORK_META_KEY] = {
                    "provider": networks.parse_network_choice(url)._provider}
        return super().invoke(ctx)


def _use_deployment_file(ctx: click.Context, param: Any, value: Any) -> Any:
    # Every reader of deployment files (the SDK's Hub.connect, the index, the hub's pages, the
    # relayer) takes $MODELHUB_DEPLOYMENT first: one place holds the choice, in this process
    # and in those it starts.
    if value is not None:
        os.environ[FILE_VARIABLE] = str(value)
    return value


deployment_option = click.option(
    "--deployment", metavar="FILE", type=click.Path(exists=True, dir_okay=False), expose_value=False,
    callback=_use_deployment_file,
    help="The deployment file (a <chainId>.json from `ape run deploy` or `modelhub up`); default: "
         "found by chain id in the checkout's deployments/, ~/.config/modelhub/deployments/, "
         "then the deployments shipped with modelhub.")


def hub_command(group: click.Group, name: str | None = None, **kwargs: Any) -> Callable:
    """`@hub_command(group)`: a command of `group` taking --network, --account, --json and
    --yes, called with a `Session` as its first argument."""

    def decorator(f: Callable) -> click.Command:
        @functools.wraps(f)
        def run(*args: Any, account: Any, as_json: bool, yes: bool, **params: Any) -> Any:
            if yes and account is not None and hasattr(account, "set_autosign"):
                account.set_autosign(True)
            return f(Session(account, as_json), *args, **params)

        command = click.option("--yes", is_flag=True,
                               help="Sign without asking (keyfile accounts; the passphrase may "
                                    "come from APE_ACCOUNTS_<alias>_PASSPHRASE).")(run)
        command = click.option("--json", "as_json", is_flag=True,
                               help="Print one JSON object on stdout (amounts in base units, "
                                    "as strings).")(command)
        command = click.option("--account", type=AccountAliasPromptChoice(),
                               envvar="MODELHUB_ACCOUNT",
                               help="Ape account alias, or TEST::<n> for a test account "
                                    "(default on dev chains: TEST::0).")(command)
        command = deployment_option(command)
        command = network_option(
            default=None, envvar="MODELHUB_NETWORK", callback=_remember_network_choice,
            help="Ape network choice or node URL (default: the local chain at "
                 f"{LOCAL_CHAIN_URL}).")(command)
        return group.command(name, cls=HubCommand, **kwargs)(command)

    return decorator


# --- errors and exit codes -----------------------------------------------------------------


def exit_code_of(error: BaseException) -> int:
    from ape.exceptions import ProviderError

    if isinstance(error, (e.ChainUnreachableError, ProviderError)):
        return EXIT_UNREACHABLE
    if isinstance(error, e.RequestWaitTimeoutError):
        return EXIT_TIMEOUT
    return EXIT_USER_ERROR


# The SDK's messages name SDK calls; at the command line the hint is the command.
_CLI_HINTS = [
    (re.compile(r"pick an id from list_models\(\)"), "see `modelhub models list`"),
    (re.compile(r"get_model\((\d+)\) lists its versions"), r"`modelhub models show \1` lists its versions"),
    (re.compile(r"\(Hub\.deposit\)"), "(`modelhub deposit`)"),
    (re.compile(r"with Hub\.faucet"), "with `modelhub faucet`"),
    (re.compile(r"\(Hub\.refund\)"), "(`modelhub refund`)"),
    (re.compile(r"with set_active"), "with `modelhub models activate`"),
    (re.compile(r"your max_price of"), "your --max-price of"),
    (re.compile(r"raise max_price"), "raise --max-price"),
    (re.compile(r"use the id request\(\) returned"), "use the id `modelhub infer` printed"),
    (re.compile(r"\(Hub\.reserve\)"), "(`modelhub reserve AMOUNT --relayer URL|ADDRESS`)"),
    (re.compile(r"\(Hub\.announce_release\)"), "(`modelhub release --relayer ... --announce AMOUNT`)"),
    (re.compile(r"through announce_release, then release"),
     "through `modelhub release --relayer ... --announce AMOUNT`, then `modelhub release`"),
    (re.compile(r"\(Hub\.announce_release\(relayer, 0\)\)"), "(`modelhub release --relayer ... --announce 0`)"),
    (re.compile(r"open the session with top_up=True"), "reserve more with `modelhub reserve`"),
    (re.compile(r"\(relayer_register\)"), "(`modelhub relayer register --endpoint URL --bond AMOUNT`)"),
]


def cli_wording(text: str) -> str:
    for pattern, replacement in _CLI_HINTS:
        text = pattern.sub(replacement, text)
    return text


def message_of(error: BaseException) -> str:
    from ape.exceptions import ApeException, ProviderError

    text = str(error).strip() or type(error).__name__
    if isinstance(error, ProviderError) and not isinstance(error, e.ModelHubError):
        return (f"cannot reach the chain: {text}; check that the node runs and that --network "
                "points at it")
    if isinstance(error, (e.ModelHubError, ApeException)):
        return cli_wording(text)
    return f"{type(error).__name__}: {text} (set MODELHUB_DEBUG=1 for the traceback)"


def report_error(error: BaseException, as_json: bool, extra: dict | None = None) -> int:
    """Prints `Error: <message>` on stderr (and, with --json, an error object on stdout);
    returns the exit code."""
    code = exit_code_of(error)
    message = message_of(error)
    if os.environ.get("MODELHUB_DEBUG"):
        import traceback

        traceback.print_exception(error, file=sys.stderr)
    click.echo(f"Error: {message}", err=True)
    if as_json:
        body = {"error": {"type": type(error).__name__, "message": message, "exitCode": code,
                          **(extra or getattr(error, "details", None) or {})}}
        click.echo(json.dumps(body))
    return code
