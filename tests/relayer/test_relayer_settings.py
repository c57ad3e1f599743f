"""The relayer's settings are defined once (relayer/settings.py): the options of `modelhub relayer
run` are made from them, keep their public names, defaults and environment variables, and an
option not given leaves its setting to the environment variable, then the default."""

from __future__ import annotations

from pathlib import Path

import click

from modelhub.cli import cli
from modelhub.relayer.settings import RelayerConfig, settings

# The command's options as the public interface fixes them: option -> (default, environment variable).
PUBLIC = {
    "--host": ("127.0.0.1", None),
    "--port": (8700, None),
    "--store": (Path("var/relayer"), None),
    "--confirmations": (0, None),
    "--batch-size": (100, None),
    "--poll-interval": (0.5, None),
    "--fetch-from": ([], None),
    "--file-wait": (60.0, None),
    "--fetch-timeout": (300.0, None),
    "--max-input-bytes": (64 * 1024, None),
    "--time-limit": (10.0, None),
    "--settle-threshold": (10**18, None),
    "--settle-interval": (60.0, None),
    "--min-receipt-lifetime": (600, None),
    "--settle-batch-size": (100, None),
    "--chain-refresh-interval": (2.0, None),
    "--min-settle-amount": (10**15, "MODELHUB_RELAYER_MIN_SETTLE_AMOUNT"),
    "--max-receipt-lifetime": (2 * 86_400, "MODELHUB_RELAYER_MAX_RECEIPT_LIFETIME"),
    "--max-upload-bytes": (256 * 1024 * 1024, "MODELHUB_RELAYER_MAX_UPLOAD_BYTES"),
    "--max-callers": (200_000, "MODELHUB_RELAYER_MAX_CALLERS"),
    "--log-level": ("info", None),
}


def _run_options() -> list[click.Option]:
    command = cli.commands["relayer"].commands["run"]
    own = {how.option for _, how, _ in settings() if how.option}
    return [param for param in command.params if isinstance(param, click.Option) and param.opts[0] in own]


def test_every_public_option_comes_from_one_setting_in_order(monkeypatch):
    for _, (_, env) in PUBLIC.items():
        if env:
            monkeypatch.delenv(env, raising=False)
    options = _run_options()
    assert [option.opts[0] for option in options] == list(PUBLIC)
    config = RelayerConfig()
    by_option = {how.option: (name, how) for name, how, _ in settings() if how.option}
    for option in options:
        name, how = by_option[option.opts[0]]
        default, env = PUBLIC[option.opts[0]]
        assert option.name == name and getattr(config, name) == default, option.opts
        assert how.env == env and (option.help or "") == how.help
        # An option backed by an environment variable has no default of its own on the command line.
        assert option.default is None if env else option.multiple or option.default == default


def test_an_option_not_given_leaves_the_setting_to_its_environment_variable(monkeypatch):
    monkeypatch.setenv("MODELHUB_RELAYER_MAX_CALLERS", "7")
    monkeypatch.delenv("MODELHUB_RELAYER_MIN_SETTLE_AMOUNT", raising=False)
    config = RelayerConfig.from_options(max_callers=None, min_settle_amount=None, fetch_from=("http://a",),
                                        inference_time_limit=2.5)
    assert config.max_callers == 7 and config.min_settle_amount == 10**15
    assert config.fetch_from == ["http://a"] and config.inference_time_limit == 2.5
    assert RelayerConfig.from_options(max_callers=9).max_callers == 9  # the option wins


def test_settings_without_an_option_still_say_what_they_do():
    for name, how, _ in settings():
        assert how.help or name == "log_level", name
