"""What every `modelhub` command shares: the --network/--account/--json options, connecting to
the hub, token amounts, output (human or one JSON object) and errors turned into exit codes.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import sys
import time
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
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report a SIGINT

LOCAL_CHAIN_URL = "http://127.0.0.1:8545"
DEFAULT_DECIMALS = 18
BASE_SUFFIX = "wei"
UINT256_MAX = 2**256 - 1  # the most any amount on chain can be

EXIT_CODES_HELP = f"""\b
Exit codes:
  {EXIT_OK}  success
  {EXIT_USER_ERROR}  an error the message explains (unknown model, not enough credit, ...)
  {EXIT_USAGE}  bad usage (unknown option, missing argument)
  {EXIT_UNREACHABLE}  the chain cannot be reached
  {EXIT_TIMEOUT}  timed out waiting for a request to be served
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); a call already paid for says its request id
"""

AMOUNTS_HELP = f"""\b
Amounts are in fee tokens with up to 18 decimals ("1.5" = 1.5 tOPG);
append "{BASE_SUFFIX}" for token base units ("1500{BASE_SUFFIX}" = 1500 base units).
"""

MODELS_HELP = """\b
A model is its id (1) or OWNER/NAME, OWNER an address or an account alias
(0x70997970C51812dc3A010C7d01b50e0d17dc79C8/iris, TEST::1/iris): anyone may
register any name, so a name alone does not say whose model it is.
"""


class HubError(e.ModelHubError):
    """An error found by the CLI itself, with a message for the user."""


class Interrupted(HubError):
    """Ctrl-C: the message says what was paid by then and how to get what was paid for."""


def ctrl_c_raises() -> None:
    """Ctrl-C raises KeyboardInterrupt from here on: importing Ape made it a silent
    sys.exit(130), and a command that has paid must say for what before it exits."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


class StopOnCtrlC:
    """Within `with`, for loops of paid calls: the first Ctrl-C asks the loop to stop after the
    call in flight (`requested`), so every call it counts is known paid and answered; a second
    one interrupts at once (KeyboardInterrupt)."""

    requested = False

    def __enter__(self) -> "StopOnCtrlC":
        signal.signal(signal.SIGINT, self._ask)
        return self

    def _ask(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc_info: object) -> None:
        ctrl_c_raises()


# --- amounts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Amount:
    """An amount as typed: a number of tokens, or base units (the `wei` suffix)."""

    text: str
    tokens: Decimal | None = None
    base: int | None = None

    def to_base(self, decimals: int, symbol: str = "tokens", maximum: int = UINT256_MAX) -> int:
        """The amount in base units; AmountTooLargeError above `maximum` (base units)."""
        if self.base is not None:
            units = Decimal(self.base)
        else:
            assert self.tokens is not None
            units = self.tokens * (Decimal(10) ** decimals)
        if units > maximum:
            raise e.AmountTooLargeError(
                f"{self.text} is too large (max {format_tokens(maximum, decimals)} {symbol}, "
                f"{maximum}{BASE_SUFFIX})", inputs={"max": maximum})
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
        if not tokens.is_finite():
            self.fail(f"{text!r} is not an amount: write tokens (1.5) or base units "
                      f"(1500{BASE_SUFFIX})", param, ctx)
        if tokens < 0:
            self.fail(f"{text!r}: amounts cannot be negative", param, ctx)
        return Amount(text, tokens=tokens)


AMOUNT = AmountType()


def format_tokens(base: int, decimals: int) -> str:
    """Base units as a decimal number of tokens, without trailing zeros: 1.5, 0.001, 10."""
    whole, frac = divmod(int(base), 10**decimals)
    if not frac:
        return str(whole)
    return f"{whole}.{str(frac).rjust(decimals, '0').rstrip('0')}"


# --- models -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelRef:
    """A model as typed by name: `owner/name` (owner an address or an account alias), or a
    bare name (`owner` None), which the command refuses with the models it could mean."""

    text: str
    owner: str | None
    name: str


class ModelType(click.ParamType):
    """A model id, or OWNER/NAME; names are resolved once the command is connected."""

    name = "model"

    def convert(self, value: Any, param: Any, ctx: Any) -> int | ModelRef:
        if isinstance(value, (int, ModelRef)):
            return value
        text = str(value).strip()
        if text.isdigit():
            if int(text) < 1:
                self.fail("model ids start at 1", param, ctx)
            return int(text)
        owner, sep, name = text.partition("/")
        if not text:
            self.fail("give a model id or OWNER/NAME", param, ctx)
        return ModelRef(text, owner, name) if sep and owner and name else ModelRef(text, None, text)


MODEL = ModelType()


def short_address(address: str) -> str:
    """`0x7099…79C8`: enough to tell accounts apart at a glance, never to name one (a key
    whose address shares those 10 digits is cheap to find)."""
    return f"{address[:6]}…{address[-4:]}"


def account_address(text: str, what: str) -> str:
    """The address of an account given as an address, an Ape alias or TEST::<n>."""
    from eth_utils import is_address, to_checksum_address

    if is_address(text):
        return to_checksum_address(text)
    try:
        return AccountAliasPromptChoice().convert(text, None, None).address
    except click.BadParameter:
        raise click.BadParameter(f"{text!r} is neither an address nor an account alias "
                                 "(`ape accounts list`, or TEST::<n> on dev chains)", param_hint=what) from None


# --- the session: connection, account, output ----------------------------------------------


class Session:
    """One command's connection to the hub and its output mode."""

    def __init__(self, account: Any, as_json: bool) -> None:
        self._account = account
        self.as_json = as_json
        self._hub = None
        self._token: tuple[str, int] | None = None
        self._labels: dict[int, str] = {}

    @property
    def hub(self):
        if self._hub is None:
            from modelhub.hub import Hub

            self._hub = Hub.connect(self.account)
        return self._hub

    @property
    def connected(self) -> bool:
        """Whether the hub is connected (then amounts can be written in its fee token)."""
        return self._hub is not None

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

    def base(self, amount: Amount | None, maximum: int = UINT256_MAX) -> int | None:
        if amount is None:
            return None
        symbol, decimals = self.token()
        return amount.to_base(decimals, symbol, maximum)

    def money(self, base: int) -> str:
        """`1.5 tOPG (1500000000000000000)`."""
        symbol, decimals = self.token()
        return f"{format_tokens(base, decimals)} {symbol} ({int(base)})"

    def money_json(self, base: int) -> str:
        """Amounts in JSON: base units as a decimal string (they overflow JSON numbers)."""
        return str(int(base))

    def with_money(self, text: str, amounts: set[int]) -> str:
        """`text` with each of `amounts` written as tokens and base units (the SDK's messages
        give base units only); numbers after "model", "version", "request" are left alone."""

        symbol = f" {self.token()[0]}"

        def money(match: re.Match) -> str:
            value = int(match.group(1))
            written = (text.startswith(symbol, match.end())  # already tokens: "1.5 tOPG (...)"
                       or text[match.start() - 1:match.start()] + text[match.end():match.end() + 1] == "()")
            if value not in amounts or written or _COUNTED.search(text, 0, match.start()):
                return match.group(0)
            return self.money(value)

        return _NUMBER.sub(money, text)

    def explain(self, error: BaseException) -> str:
        """The one-line message of `error`, at the command line: CLI wording, and its amounts
        in tokens and base units."""
        text = message_of(error)
        amounts = _amounts_of(error) if isinstance(error, e.ContractRevertError) else set()
        return self.with_money(text, amounts) if amounts and self.connected else text

    # models

    def model_id(self, model: int | ModelRef) -> int:
        """The id of a model given as an id or as OWNER/NAME; a one-line error listing the
        candidates for a bare, unknown or ambiguous name."""
        if isinstance(model, int):
            return model
        hub = self.hub
        named = hub.models_named(model.name)
        listed = ", ".join(f"{owner}/{model.name} (model {model_id})" for model_id, owner in named)
        if model.owner is None:
            if not named:
                raise e.UnknownModelError(f"no model is named {model.name!r}; `modelhub models list` "
                                          "lists them (by id, name and owner)")
            raise HubError(f"{model.name!r} is only a name, and anyone may register any name: say whose "
                           f"model you mean, as OWNER/NAME or by id: {listed}")
        owner = account_address(model.owner, "MODEL")
        mine = [model_id for model_id, now in named if now == owner]
        if len(mine) == 1:
            return mine[0]
        if not mine:
            raise e.UnknownModelError(f"{owner} owns no model named {model.name!r}" + (
                f"; models of that name: {listed}" if named else "; `modelhub models list` lists them"))
        raise HubError(f"{model.text} is ambiguous: {owner} owns {len(mine)} models named "
                       f"{model.name!r} (ids {', '.join(map(str, mine))}); give the id")

    def model_label(self, model_id: int) -> str:
        """`1 iris (0x7099…79C8)`: a model with its name and the short address of its owner."""
        if model_id not in self._labels:
            model = self.hub.get_model(model_id)
            self._labels[model_id] = f"{model_id} {model.name} ({short_address(model.owner)})"
        return self._labels[model_id]

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


# A whole number in a message (not inside an address or a decimal), and the words after which
# a number counts something rather than being an amount.
_NUMBER = re.compile(r"(?<![\w.])(\d+)(?: base units| fee tokens)?(?![\w.])")
_COUNTED = re.compile(r"(?:model|version|request|id|ids|calls?) \Z")
# The arguments of the contracts' errors (and the SDK's) that are amounts.
AMOUNT_INPUTS = frozenset({"amount", "balance", "bond", "credit", "max", "maxBond", "maxCredit", "maxPrice",
                           "maxPricePerCall", "minBond", "needed", "paid", "price", "pricePerCall", "releasing",
                           "required", "reserved", "unsettled"})


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


_NEGATIVE = re.compile(r"-\d[\d.]*(?:e[+-]?\d+)?(?:wei)?", re.IGNORECASE)
PROVIDER_SETTINGS_HELP = ("Settings for the chain's provider, as JSON "
                          "(e.g. '{\"request_timeout\": 60}'); rarely needed.")


class HubCommand(ConnectedProviderCommand):
    """A command connected to the chain of --network. Without --network: the local chain at
    127.0.0.1:8545 if one runs, never a throwaway chain of Ape's own. A URL of a dev chain
    (anvil) is reached through Ape's foundry provider, which decodes anvil's reverts."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # click reads "-1" as an unknown option ("No such option: -1"): say what is wrong.
        for arg in args:
            if arg == "--":
                break
            if _NEGATIVE.fullmatch(arg):
                raise click.UsageError(f"{arg}: negative numbers are not accepted: amounts, ids and "
                                       "counts are positive (amounts as tokens, 1.5, or base units, "
                                       f"1500{BASE_SUFFIX})", ctx)
        # Ape adds this option itself when a command lacks it, with a help text of its own.
        if not any(param.name == "provider_settings" for param in self.params):
            from ape.cli.options import ProviderSettingsOption

            self.params.append(ProviderSettingsOption(help=PROVIDER_SETTINGS_HELP))
        return super().parse_args(ctx, args)

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
            session = Session(account, as_json)
            try:
                # Models typed as OWNER/NAME are looked up now that the chain is connected.
                resolved = {name: session.model_id(value) if isinstance(value, ModelRef) else value
                            for name, value in params.items()}
                return f(session, *args, **resolved)
            except e.ContractRevertError as error:
                error.args = (session.explain(error), *error.args[1:])
                raise

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
            default=None, envvar="MODELHUB_NETWORK", callback=_remember_network_choice, metavar="NETWORK",
            help="Ape network choice or node URL (default: the local chain at "
                 f"{LOCAL_CHAIN_URL}).")(command)
        return group.command(name, cls=HubCommand, **kwargs)(command)

    return decorator


def _amounts_of(error: e.ContractRevertError) -> set[int]:
    """The amounts among an error's arguments (and the shortfall the SDK's message derives)."""
    inputs = error.inputs
    amounts = {int(value) for key, value in inputs.items()
               if key in AMOUNT_INPUTS and isinstance(value, int) and not isinstance(value, bool)}
    if isinstance(inputs.get("credit"), int) and isinstance(inputs.get("required"), int):
        amounts.add(inputs["required"] - inputs["credit"])
    return {amount for amount in amounts if amount >= 0}


# --- errors and exit codes -----------------------------------------------------------------

# Ape's error for a network whose node URL comes from an environment variable left unset.
_UNSET_URL = re.compile(r"Invalid uri: \$\{?(\w+)\}?")


def exit_code_of(error: BaseException) -> int:
    from ape.exceptions import ProviderError

    if isinstance(error, Interrupted):
        return EXIT_INTERRUPTED
    if isinstance(error, (e.ChainUnreachableError, ProviderError)) or _UNSET_URL.search(str(error)):
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
    (re.compile(r"\(check_input=False\)"), "(--no-check)"),
    (re.compile(r"give a positive amount in token base units"), "give a positive amount"),
]


def cli_wording(text: str) -> str:
    for pattern, replacement in _CLI_HINTS:
        text = pattern.sub(replacement, text)
    return text


def message_of(error: BaseException) -> str:
    from ape.exceptions import ApeException, ProviderError

    text = str(error).strip() or type(error).__name__
    if unset := _UNSET_URL.search(text):
        name = unset.group(1)
        return (f"the network's node URL comes from the environment variable {name}, which is not set: "
                f"set it to your node's RPC URL (export {name}=https://...), or pass --network URL")
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
    click.echo(message if isinstance(error, Interrupted) else f"Error: {message}", err=True)
    if as_json:
        body = {"error": {"type": type(error).__name__, "message": message, "exitCode": code,
                          **(extra or getattr(error, "details", None) or {})}}
        click.echo(json.dumps(body))
    return code


# --- time ------------------------------------------------------------------------------------


def chain_now() -> int:
    """Now, as the next block will see it: the head's time, or later if no block came lately
    (a dev chain whose clock was moved ahead keeps it)."""
    from ape import chain

    return max(int(chain.blocks.head.timestamp), int(time.time()))


def utc(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def duration(seconds: int) -> str:
    """`1 h`, `1 h 59 min`, `5 min 3 s`, `40 s`: whole units, at most two of them."""
    seconds = max(int(seconds), 0)
    if seconds >= 3600:
        hours, minutes = seconds // 3600, seconds % 3600 // 60
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    if seconds >= 60:
        return f"{seconds // 60} min" + (f" {seconds % 60} s" if seconds % 60 and seconds < 3600 else "")
    return f"{seconds} s"


def _until(timestamp: int, now: int) -> str:
    return f"in {duration(timestamp - now)}" if timestamp > now else "now"


def local_time(timestamp: int) -> str:
    """`2025-01-01 13:00:00 CET`: a moment in the user's own time zone."""
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(timestamp))


def relative(timestamp: int, now: int) -> str:
    """`in 5 min`, `5 min ago`, or `now`."""
    if timestamp == now:
        return "now"
    return f"in {duration(timestamp - now)}" if timestamp > now else f"{duration(now - timestamp)} ago"


def when(timestamp: int, now: int) -> str:
    """`from 2025-01-01 12:00:00 UTC (in 1 h)`, or `now` once it has come."""
    return "ready now" if now >= timestamp else f"from {utc(timestamp)} ({_until(timestamp, now)})"
