"""`ape run deploy`: deploy Model Hub's contracts and write deployments/<chainId>.json (and the
same file into the user's config folder, where the SDK and the CLI find it from any folder).

On a dev network (anvil) it also deploys the open-mint test token and signs with a test
account unless --account is given; anywhere else it needs --account and --token.
"""

import click
from ape import accounts, chain, networks
from ape.cli import ConnectedProviderCommand, ape_cli_context, network_option

from modelhub.deployments import DEV_CHAIN_IDS, DeployParams, deploy, remember_deployment, save_deployment
from modelhub.errors import ModelHubError

DEFAULTS = DeployParams()


def _resolve_account(alias: str | None, yes: bool):
    if alias is None:
        if chain.chain_id not in DEV_CHAIN_IDS:
            raise click.UsageError(
                f"chain {chain.chain_id} is not a dev network: choose who pays with --account <alias> "
                "(see `ape accounts list`; import one with `ape accounts import <alias>`)."
            )
        return accounts.test_accounts[0]
    if alias.startswith("TEST::"):
        return accounts.test_accounts[int(alias.removeprefix("TEST::"))]
    try:
        account = accounts.load(alias)
    except Exception as exc:  # Ape raises its own error type for unknown aliases
        raise click.BadParameter(f"no account named {alias!r}: {exc}", param_hint="--account") from exc
    if yes:
        # Reads the passphrase from APE_ACCOUNTS_<alias>_PASSPHRASE, or asks once.
        account.set_autosign(True)
    return account


@click.command(cls=ConnectedProviderCommand, short_help="Deploy Model Hub and write deployments/<chainId>.json")
@ape_cli_context()
@network_option()
@click.option("--account", "account_alias", default=None, help="Ape account alias that deploys and owns the contracts (default on dev networks: the first test account).")
@click.option("--token", default=None, help="Fee token address. Required outside dev networks; on a dev network the test token tOPG is deployed when omitted.")
@click.option("--treasury", default=None, help="Account receiving the protocol fee (default: the deployer).")
@click.option("--protocol-fee-bps", type=click.IntRange(0, 1_000), default=DEFAULTS.protocol_fee_bps, show_default=True, help="Treasury share of each fee, in basis points.")
@click.option("--relayer-fee-bps", type=click.IntRange(0, 3_000), default=DEFAULTS.relayer_fee_bps, show_default=True, help="Serving relayer's share of each fee, in basis points.")
@click.option("--min-bond", type=click.IntRange(1), default=DEFAULTS.min_bond, show_default=True, help="Smallest relayer bond, in token base units.")
@click.option("--unbond-delay", type=click.IntRange(0), default=DEFAULTS.unbond_delay, show_default=True, help="Seconds between beginUnbond and withdrawBond.")
@click.option("--request-timeout", type=click.IntRange(1), default=DEFAULTS.request_timeout, show_default=True, help="Seconds a relayer has to serve a call before the caller may take a refund.")
@click.option("--price-notice", "price_notice_period", type=click.IntRange(0), default=DEFAULTS.price_notice_period, show_default=True, help="Seconds after a price rise during which signed receipts at the former price still settle.")
@click.option("--withdrawal-delay", type=click.IntRange(0), default=DEFAULTS.withdrawal_delay, show_default=True, help="Seconds an account that signs receipts waits between announcing and making a withdrawal.")
@click.option("--yes", is_flag=True, help="Sign every transaction without asking (the passphrase may come from APE_ACCOUNTS_<alias>_PASSPHRASE).")
def cli(cli_ctx, network, account_alias, token, treasury, protocol_fee_bps, relayer_fee_bps, min_bond, unbond_delay, request_timeout, price_notice_period, withdrawal_delay, yes):
    """Deploy ModelRegistry, RelayerRegistry and InferenceEscrow (and tOPG on dev networks)."""
    deployer = _resolve_account(account_alias, yes)
    params = DeployParams(
        protocol_fee_bps, relayer_fee_bps, min_bond, unbond_delay, request_timeout, price_notice_period, withdrawal_delay
    )
    click.echo(f"Deploying Model Hub to {networks.provider.network_choice} (chain {chain.chain_id}) as {deployer.address}")
    try:
        deployment = deploy(deployer, token=token, treasury=treasury, params=params, progress=lambda line: click.echo(f"  {line}"))
    except ModelHubError as exc:
        raise click.ClickException(str(exc)) from exc
    path = save_deployment(deployment)
    remembered = remember_deployment(deployment)
    click.echo(
        f"Fees: treasury {protocol_fee_bps} bps, relayer {relayer_fee_bps} bps; "
        f"min bond {min_bond}, unbond delay {unbond_delay}s, request timeout {request_timeout}s; "
        f"price notice {price_notice_period}s, withdrawal delay {withdrawal_delay}s"
    )
    click.echo(f"Wrote {path} and {remembered} (start block {deployment.start_block})")
