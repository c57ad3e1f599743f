"""What a simulation is asked: the scenario file (TOML or YAML) as validated pydantic models,
with errors that name the field, and the overrides a parameter sweep applies to it.

Amounts are in fee tokens (decimals allowed: "0.001" per call); the engine works in base units.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..deployments import DeployParams
from ..errors import ModelHubError
from ..feesplit import BPS

TOKEN = 10**18
_DEFAULTS = DeployParams()
BUNDLED = "scenarios"  # the package folder that holds the scenarios shipped with Model Hub
SUFFIXES = (".toml", ".yaml", ".yml")


class ScenarioError(ModelHubError):
    """A scenario file that cannot be read or does not validate; the message names the field."""


def wei(tokens: Decimal) -> int:
    """`tokens` in base units, rounded down (an amount in a file may have more than 18 decimals)."""
    return int(tokens * TOKEN)


class _Section(BaseModel):
    # A misspelt key is an error, not a silently ignored default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Protocol(_Section):
    """The deployment's parameters; the defaults are those `deploy()` uses today (DeployParams)."""

    protocol_fee_bps: int = Field(_DEFAULTS.protocol_fee_bps, ge=0, le=1_000)
    relayer_fee_bps: int = Field(_DEFAULTS.relayer_fee_bps, ge=0, le=3_000)
    min_bond: Decimal = Field(Decimal(_DEFAULTS.min_bond) / TOKEN, gt=0)
    unbond_delay: int = Field(_DEFAULTS.unbond_delay, ge=0)
    request_timeout: int = Field(_DEFAULTS.request_timeout, ge=1)
    price_notice_period: int = Field(_DEFAULTS.price_notice_period, ge=0, le=30 * 86_400)
    withdrawal_delay: int = Field(_DEFAULTS.withdrawal_delay, ge=0, le=30 * 86_400)

    def deploy_params(self) -> DeployParams:
        return DeployParams(
            protocol_fee_bps=self.protocol_fee_bps, relayer_fee_bps=self.relayer_fee_bps,
            min_bond=wei(self.min_bond), unbond_delay=self.unbond_delay, request_timeout=self.request_timeout,
            price_notice_period=self.price_notice_period, withdrawal_delay=self.withdrawal_delay,
        )


class Quality(_Section):
    """Model quality (the chance that one output is good for its caller): a share of good
    models drawn uniformly from `good`, the rest from `bad`."""

    good_share: float = Field(0.3, ge=0, le=1)
    good: tuple[float, float] = (0.8, 0.98)
    bad: tuple[float, float] = (0.1, 0.6)
    # Where "good" starts, for the report's shares of calls and earnings.
    good_threshold: float = Field(0.8, gt=0, le=1)

    @model_validator(mode="after")
    def _ranges(self) -> "Quality":
        for name in ("good", "bad"):
            low, high = getattr(self, name)
            if not 0 <= low <= high <= 1:
                raise ValueError(f"{name} must be [low, high] with 0 <= low <= high <= 1, not [{low}, {high}]")
        return self


class Uploaders(_Section):
    """Who may upload a model (one each), what it costs them, and how they decide."""

    initial: int = Field(10, ge=0, description="enter on day 0 whatever they expect")
    potential: int = Field(1_000, ge=0, description="may enter later, when expected earnings beat cost")
    consider_per_day: float = Field(0.01, ge=0, le=1, description="chance a potential uploader looks on a day")
    quality: Quality = Quality()
    price: Decimal = Field(Decimal("0.001"), ge=0, description="median starting price per call, tokens")
    price_spread: float = Field(0.5, ge=0, description="lognormal sigma of starting prices")
    upload_cost: Decimal = Field(Decimal("2"), ge=0, description="median one-off cost, tokens")
    monthly_cost: Decimal = Field(Decimal("1"), ge=0, description="median cost per 30 days, tokens")
    cost_spread: float = Field(0.5, ge=0, description="lognormal sigma of costs")
    horizon_days: int = Field(180, ge=1, description="how far ahead an uploader counts earnings")
    optimism: float = Field(1.0, gt=0, description="median factor on the earnings an uploader expects")
    optimism_spread: float = Field(0.5, ge=0, description="lognormal sigma of optimism")
    benchmark_quantile: float = Field(0.5, ge=0, le=1, description="of established models' earnings")
    prior_monthly_earnings: Decimal = Field(Decimal("1"), ge=0, description="expected before any model is established")
    grace_days: int = Field(45, ge=1, description="age before an uploader considers leaving")
    reprice_every_days: int = Field(14, ge=0, description="0: prices never change")
    reprice_step: float = Field(0.1, ge=0, lt=1)
    payee_shares: list[int] = Field(default_factory=lambda: [BPS], min_length=1, max_length=8,
                                    description="the uploader's share first, then co-authors'")
    withdraw_every_days: int = Field(30, ge=1)

    @model_validator(mode="after")
    def _shares(self) -> "Uploaders":
        if any(share <= 0 for share in self.payee_shares) or sum(self.payee_shares) != BPS:
            raise ValueError(f"payee_shares must be positive and sum to {BPS}, not {self.payee_shares}")
        return self


Discovery = Literal["signals", "random"]
SortKey = Literal["calls", "revenue", "callers", "repeat_callers", "newest"]
Window = Literal["7d", "30d", "all"]


class Callers(_Section):
    """Who calls models: budgets, tasks, how they find models and when they give up."""

    initial: int = Field(200, ge=0)
    arrivals_per_day: float = Field(2.0, ge=0)
    referrals_per_day: float = Field(0.01, ge=0, description="new callers each satisfied caller brings per day")
    calls_per_day: float = Field(20.0, gt=0, description="median demand of a caller")
    calls_spread: float = Field(1.0, ge=0)
    value_per_call: Decimal = Field(Decimal("0.004"), gt=0, description="median worth of one good output, tokens")
    value_spread: float = Field(0.5, ge=0)
    budget_per_month: Decimal = Field(Decimal("2"), gt=0, description="median tokens set aside every 30 days")
    budget_spread: float = Field(0.5, ge=0)
    trust: float = Field(0.8, gt=0, le=1, description="a caller pays at most value x trust per call")
    discovery: Discovery = "signals"
    sort: SortKey = "repeat_callers"
    window: Window = "30d"
    explore: float = Field(0.1, ge=0, le=1, description="chance a choice ignores the ranking")
    attention: float = Field(0.3, gt=0, le=1, description="chance of stopping at each listed model")
    switch_per_day: float = Field(0.02, ge=0, le=1)
    patience: int = Field(10, ge=1, description="calls before judging a model")
    tolerance: float = Field(0.5, ge=0, le=1, description="share of bad outputs that makes a caller drop a model")
    leave_after_days: int = Field(30, ge=1, description="a caller whose recent surplus is negative leaves after this")
    give_up_days: int = Field(14, ge=1, description="days without a model worth calling before leaving")


class Relayers(_Section):
    """Who serves calls: costs, and when serving pays enough to bond."""

    initial: int = Field(1, ge=1)
    potential: int = Field(30, ge=0)
    cost_per_call: Decimal = Field(Decimal("0.00002"), ge=0)
    fixed_cost_per_day: Decimal = Field(Decimal("0.2"), ge=0)
    cost_spread: float = Field(0.3, ge=0, description="lognormal sigma of relayers' costs")
    capital_cost_per_year: float = Field(0.05, ge=0, description="of the bond")
    settle_every_days: int = Field(1, ge=1)
    withdraw_every_days: int = Field(30, ge=1)


class Scenario(_Section):
    """One simulation: its length, seed and agents."""

    name: str = Field(min_length=1)
    description: str = ""
    days: int = Field(180, ge=1, le=3_650)
    seed: int = Field(1, ge=0)
    tasks: int = Field(4, ge=1, description="kinds of task; a model serves one, a caller needs one")
    protocol: Protocol = Protocol()
    uploaders: Uploaders = Uploaders()
    callers: Callers = Callers()
    relayers: Relayers = Relayers()

    def with_overrides(self, overrides: dict[str, Any]) -> "Scenario":
        """This scenario with `overrides` applied ({"protocol.protocol_fee_bps": 100} or the bare
        name of a unique field, {"protocol_fee_bps": 100}), validated again."""
        data = self.model_dump(mode="json")
        for key, value in overrides.items():
            path = resolve_field(key)
            target = data
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = value
        return validate(data, f"{self.name} with {overrides}")


def _field_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths += _field_paths(annotation, prefix + (name,))
        else:
            paths.append(prefix + (name,))
    return paths


def resolve_field(key: str) -> tuple[str, ...]:
    """The path of a scenario field named by `key`: dotted ("callers.discovery"), or a bare
    name that only one section has ("protocol_fee_bps")."""
    paths = _field_paths(Scenario)
    wanted = tuple(key.split("."))
    if wanted in paths:
        return wanted
    matches = [path for path in paths if path[-len(wanted):] == wanted]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ScenarioError(f"no scenario field {key!r}; fields are " + ", ".join(".".join(p) for p in paths))
    raise ScenarioError(f"{key!r} is ambiguous: say " + " or ".join(".".join(p) for p in matches))


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source} is not a valid scenario:"]
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  {field}: {item['msg']}")
    return "\n".join(lines)


def validate(data: Any, source: str) -> Scenario:
    """The scenario in `data` (parsed TOML/YAML), or ScenarioError naming each bad field."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source} is not a valid scenario: it must be a table of fields, not {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(_describe(error, source)) from None


def bundled_names() -> list[str]:
    """The scenarios shipped with Model Hub, by name."""
    folder = resources.files(__package__).joinpath(BUNDLED)
    return sorted(Path(item.name).stem for item in folder.iterdir() if Path(item.name).suffix in SUFFIXES)


def find(name_or_path: str) -> Path:
    """A scenario file: a path, or the name of a bundled scenario ("defaults")."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    folder = resources.files(__package__).joinpath(BUNDLED)
    for suffix in SUFFIXES:
        candidate = folder.joinpath(name_or_path + suffix)
        if candidate.is_file():
            return Path(str(candidate))
    raise ScenarioError(f"no scenario file {name_or_path!r}, and no bundled scenario of that name; "
                        f"bundled: {', '.join(bundled_names())}")


def load(name_or_path: str) -> Scenario:
    """Reads and validates a scenario file (.toml, .yaml or .yml) or a bundled scenario."""
    path = find(name_or_path)
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        raise ScenarioError(f"{path} cannot be parsed: {error}") from None
    return validate(data, str(path))
