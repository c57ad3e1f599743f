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
@click.option("--dispute-window", type=click.IntRange(1), default=DEFAULTS.dispute_window, show_default=True, help="Seconds after a settlement during which its attestation may be challenged.")
@click.option("--challenge-bond", type=click.IntRange(1), default=DEFAULTS.challenge_bond, show_default=True, help="Bond a challenger posts, in token base units.")
@click.option("--slash-amount", type=click.IntRange(1), default=DEFAULTS.slash_amount, show_default=True, help="Taken from a relayer found lying, on top of the call's price; more than the two rewards, at most --min-bond.")
@click.option("--challenger-reward", type=click.IntRange(0), default=DEFAULTS.challenger_reward, show_default=True, help="Paid to a successful challenger out of the slash.")
@click.option("--juror-reward", type=click.IntRange(0), default=DEFAULTS.juror_reward, show_default=True, help="Shared by the jurors in the majority, out of the slash or the failed challenger's bond.")
@click.option("--juror-penalty", type=click.IntRange(0), default=DEFAULTS.juror_penalty, show_default=True, help="Taken from each juror who does not reveal or votes against the majority.")
@click.option("--jury-size", type=click.IntRange(3, 31), default=DEFAULTS.jury_size, show_default=True, help="Seats of a jury; odd.")
@click.option("--commit-period", type=click.IntRange(1), default=DEFAULTS.commit_period, show_default=True, help="Seconds the jurors have to commit their votes.")
@click.option("--reveal-period", type=click.IntRange(1), default=DEFAULTS.reveal_period, show_default=True, help="Seconds the jurors have to reveal them, after the commits.")
@click.option("--draw-delay", type=click.IntRange(2), default=DEFAULTS.draw_delay, show_default=True, help="Blocks between a challenge and the first block its jury may be drawn in.")
@click.option("--yes", is_flag=True, help="Sign every transaction without asking (the passphrase may come from APE_ACCOUNTS_<alias>_PASSPHRASE).")
def cli(cli_ctx, network, account_alias, token, treasury, yes, **settings):
    """Deploy ModelRegistry, RelayerRegistry, InferenceEscrow and DisputeCourt (and tOPG on dev networks)."""
    params = DeployParams(**settings)
    problem = params.dispute_terms_problem()
    if problem:
        raise click.UsageError(f"{problem}; change the parameters")
    deployer = _resolve_account(account_alias, yes)
    click.echo(f"Deploying Model Hub to {networks.provider.network_choice} (chain {chain.chain_id}) as {deployer.address}")
    try:
        deployment = deploy(deployer, token=token, treasury=treasury, params=params, progress=lambda line: click.echo(f"  {line}"))
    except ModelHubError as exc:
        raise click.ClickException(str(exc)) from exc
    path = save_deployment(deployment)
    remembered = remember_deployment(deployment)
    click.echo(
        f"Fees: treasury {params.protocol_fee_bps} bps, relayer {params.relayer_fee_bps} bps; "
        f"min bond {params.min_bond}, unbond delay {params.unbond_delay}s, request timeout {params.request_timeout}s; "
        f"price notice {params.price_notice_period}s, withdrawal delay {params.withdrawal_delay}s"
    )
    click.echo(
        f"Disputes: window {params.dispute_window}s, bond {params.challenge_bond}, slash {params.slash_amount} "
        f"+ the call's price, jury of {params.jury_size} drawn {params.draw_delay} blocks later, "
        f"commit {params.commit_period}s, reveal {params.reveal_period}s"
    )
    click.echo(f"Wrote {path} and {remembered} (start block {deployment.start_block})")
