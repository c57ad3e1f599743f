"""`modelhub models ...`: upload, list, show (with the tensors of the model file), push the file to
relayers, and manage models (price, versions, payees, active flag)."""

from __future__ import annotations

import datetime as dt
import json
import shlex
from pathlib import Path
from typing import Any

import click

from .. import errors as e
from ..indexer import SORT_KEYS, WINDOWS
from .common import AMOUNT, AMOUNTS_HELP, MODEL, MODELS_HELP, HubError, Session, hub_command, print_table, short_address
from .index import DEFAULT_DB

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group(epilog=AMOUNTS_HELP + "\n" + MODELS_HELP)
def models() -> None:
    """Upload, list, show and manage models."""


def _storage_options(f: Any) -> Any:
    f = click.option("--store", type=click.Path(file_okay=False, path_type=Path),
                     help="Also keep the file in this local model store folder.")(f)
    f = click.option("--relayer", "relayer_url", metavar="URL",
                     help="Upload the file to the relayer at URL (POST /v1/artifacts).")(f)
    return f


def _store(folder: Path | None):
    if folder is None:
        return None
    from modelhub.store import ModelStore

    return ModelStore(folder)


def _card_option(f: Any) -> Any:
    return click.option(
        "--card", type=FILE,
        help="The version's model card (JSON; may declare the jurors' tolerance for float outputs): "
             "checked, registered by its content id (ipfs://CID) instead of --metadata-uri, stored "
             "like the file.")(f)


def _card_uri(card: Path | None, metadata_uri: str) -> str:
    """The metadata URI a version gets: --metadata-uri, or the content URI of --card (the hub
    checks the card itself before registering)."""
    if card is None:
        return metadata_uri
    if metadata_uri:
        raise click.UsageError("give --card or --metadata-uri, not both: a card's URI is its content id")
    from ..verdict import card_uri

    return card_uri(card.read_bytes())


def _card_line(card: Path | None, uri: str, relayer_url: str | None) -> str:
    if card is None:
        return ""
    where = "" if relayer_url else f"; upload it to relayers with `modelhub models push {card}`"
    return f"\n  card: {uri}{where}"


@hub_command(models, epilog=AMOUNTS_HELP)
@click.argument("file", type=FILE)
@click.option("--name", required=True, help="The model's name.")
@click.option("--price", type=AMOUNT, required=True, help="Price per call (0 = free).")
@click.option("--metadata-uri", default="", help="URI of the model card.")
@_card_option
@_storage_options
def upload(session: Session, file: Path, name: str, price, metadata_uri: str, card: Path | None,
           relayer_url: str | None, store: Path | None) -> None:
    """Register the ONNX model FILE as a new model, at --price per call.

    Without --relayer or --store the file is only registered: make it available to relayers
    yourself (its content id is printed; `modelhub models push FILE` uploads it to every
    active relayer).
    """
    hub = session.hub
    base = session.base(price)
    uri = _card_uri(card, metadata_uri)
    result = hub.upload_model(file, name, base, metadata_uri, store=_store(store),
                              relayer_url=relayer_url, card=card)
    session.emit(
        {"modelId": result.model_id, "version": 1, "name": name, "price": session.money_json(base),
         "digest": "0x" + result.digest.hex(), "cid": result.cid, "owner": hub.address, "metadataURI": uri},
        f"Registered model {result.model_id} ({name}) at {session.money(base)} per call\n"
        f"  version 1: {result.cid} (sha-256 0x{result.digest.hex()})" + _card_line(card, uri, relayer_url),
    )


@hub_command(models, name="list")
@click.option("--sort", type=click.Choice(SORT_KEYS), default=None,
              help="Rank by a signal from the index (brought up to the chain's head first): paid calls, "
                   "revenue, paying callers, repeat callers, organic calls (not the owner's or payees'), "
                   "relayers serving it, price, or newest.")
@click.option("--window", type=click.Choice(list(WINDOWS)), default="all", show_default=True,
              help="With --sort or --search: the period the signals cover.")
@click.option("--search", default=None, help="Only models whose name or owner address contains this (uses the index).")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True, help="With --sort or --search.")
@click.option("--db", "db_url", default=DEFAULT_DB, show_default=True, envvar="MODELHUB_INDEX_DB",
              help="The index database (see `modelhub index`).")
def list_models(session: Session, sort: str | None, window: str, search: str | None, limit: int,
                db_url: str) -> None:
    """List every registered model; with --sort or --search, ranked by the hub's signals."""
    if sort is not None or search is not None:
        _list_by_signals(session, sort or "calls", window, search, limit, db_url)
        return
    found = session.hub.list_models()
    rows = [_model_json(session, model, details=False) for model in found]

    def human() -> None:
        if not found:
            click.echo("No models yet: register one with `modelhub models upload`.")
            return
        table = [("ID", "NAME", "OWNER", "PRICE", "VERSION", "ACTIVE", "CALLS")]
        table += [(str(m.id), m.name, short_address(m.owner), session.money(m.price), str(m.latest_version),
                   "yes" if m.active else "no", str(m.calls)) for m in found]
        print_table(table)

    session.emit({"models": rows}, human)


def _caught_up_index(db_url: str):
    """The index database, brought up to the connected chain's head; and that head's time."""
    from ape import chain

    from ..deployments import load_deployment
    from ..indexer.follow import Indexer
    from ..indexer.schema import open_database

    engine = open_database(db_url)
    indexer = Indexer(engine, load_deployment(chain.chain_id), chain.provider.http_uri)
    while not indexer.step().idle:
        pass
    return engine, indexer, chain.blocks.head.timestamp


def _list_by_signals(session: Session, sort: str, window: str, search: str | None, limit: int, db_url: str) -> None:
    from ..indexer import signals

    engine, indexer, now = _caught_up_index(db_url)
    with engine.connect() as db:
        found = signals.list_models(db, now, sort=sort, window=window, search=search, limit=limit)

    def human() -> None:
        if not found:
            click.echo("No model matches." if search else "No models yet: register one with `modelhub models upload`.")
            return
        table = [("ID", "NAME", "OWNER", "PRICE", "CALLS", "REVENUE", "CALLERS", "REPEAT", "ORGANIC", "RELAYERS")]
        for m in found:
            g = m.signals
            table.append((str(m.model_id), m.name, short_address(m.owner), session.money(m.price), str(g.calls),
                          session.money(g.revenue), str(g.callers), str(g.repeat_callers), str(g.organic_calls),
                          str(g.relayers)))
        click.echo(f"by {sort}, {'all time' if window == 'all' else 'last ' + window}, as of block {indexer.cursor}")
        print_table(table)

    session.emit({"sort": sort, "window": window, "block": indexer.cursor,
                  "models": [m.as_json() for m in found]}, human)


@hub_command(models)
@click.argument("model_id", type=MODEL)
@click.option("--signals", "with_signals", is_flag=True,
              help="Also show the hub's signals (all time, last 30 and 7 days) from the index, brought up to date.")
@click.option("--db", "db_url", default=DEFAULT_DB, show_default=True, envvar="MODELHUB_INDEX_DB",
              help="With --signals: the index database (see `modelhub index`).")
@click.option("--store", type=click.Path(file_okay=False, path_type=Path),
              help="A local model store folder to read the model file from (and keep it in once fetched).")
@click.option("--cards", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              help="The folder a file:// model card is read from, for its example input.")
def show(session: Session, model_id: int, with_signals: bool, db_url: str, store: Path | None,
         cards: Path) -> None:
    """Show one model: its tensors, price, versions, payees and usage.

    The input and output tensors (names, element types, shapes) are read from the ONNX file of
    the latest version: from --store, or fetched by its content id from the registered relayers
    and checked against the digest on chain. The example input is the model card's own (a
    ```json block naming exactly the inputs), or one made from the input tensors.
    """
    model = session.hub.get_model(model_id)
    tensors = _tensors(session, model, _store(store), cards)
    found: dict = {}
    if with_signals:
        from dataclasses import asdict

        from ..indexer import WINDOWS, signals

        engine, _, now = _caught_up_index(db_url)
        with engine.connect() as db:
            found = {window: asdict(signals.model_signals(db, model_id, now, window)) for window in WINDOWS}

    def human() -> None:
        click.echo(f"Model {model.id}: {model.name}")
        click.echo(f"  owner     {model.owner}")
        click.echo(f"  price     {session.money(model.price)} per call")
        click.echo(f"  active    {'yes' if model.active else 'no'}")
        click.echo(f"  card      {model.metadata_uri or '-'}")
        click.echo(f"  usage     {model.calls} settled calls, revenue {session.money(model.revenue)}")
        if tensors["fileProblem"]:
            click.echo(f"  tensors   not at hand: {tensors['fileProblem']}")
        else:
            for kind in ("inputs", "outputs"):
                click.echo(f"  {kind}")
                for tensor in tensors[kind]:
                    click.echo(f"    {tensor['name']}  {tensor['type']}{_shape_text(tensor)}")
        if tensors["exampleInput"] is not None:
            click.echo(f"  example   {json.dumps(tensors['exampleInput'])}")
            click.echo(f"            modelhub infer {model.id} {shlex.quote(json.dumps(tensors['exampleInput']))}")
        click.echo("  versions")
        for v in model.versions:
            when = dt.datetime.fromtimestamp(v.published_at, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            latest = "  (latest)" if v.version == model.latest_version else ""
            click.echo(f"    {v.version}  {v.cid}  {when}{latest}")
        click.echo("  payees")
        for p in model.payees:
            click.echo(f"    {p.account}  {p.share} bps")
        if found:
            click.echo("  signals   (paid calls only)")
            click.echo("    window  calls  revenue  callers  repeat  organic  success  median settle  relayers")
            for window, g in found.items():
                rate = "-" if g["success_rate"] is None else f"{g['success_rate']:.0%}"
                median = "-" if g["median_settle_seconds"] is None else f"{g['median_settle_seconds']:.0f} s"
                click.echo(f"    {window:<6}  {g['calls']}  {session.money(g['revenue'])}  {g['callers']}  "
                           f"{g['repeat_callers']}  {g['organic_calls']}  {rate}  {median}  {g['relayers']}")

    body = {**_model_json(session, model, details=True), **tensors}
    if found:
        body["signals"] = {window: {k: (str(v) if isinstance(v, int) and not isinstance(v, bool) else v)
                                    for k, v in g.items()} for window, g in found.items()}
    session.emit(body, human)


def _tensors(session: Session, model: Any, store: Any, cards: Path) -> dict:
    """The latest version's tensors and an example input, or why the file is not at hand."""
    from dataclasses import asdict

    from ..errors import ModelFileUnavailableError
    from ..fetch import Limits
    from ..runtime import ModelRuntime
    from ..web.card import Cards, example_input, tensors

    found: dict[str, Any] = {"inputs": [], "outputs": [], "exampleInput": None, "fileProblem": None}
    version = model.versions[-1]
    try:
        data = session.hub.model_file(model.id, version.version, store=store,
                                      limits=Limits(read_timeout=10.0, total_timeout=60.0))
    except ModelFileUnavailableError as error:
        found["fileProblem"] = (f"{error}; give a store holding it with --store, or upload it to a relayer with "
                                "`modelhub models push FILE`")
        return found
    try:
        loaded = ModelRuntime(max_sessions=1).load(version.digest, data)
    except e.ModelHubError as error:
        found["fileProblem"] = f"the model file {version.cid} cannot be read: {error}"
        return found
    inputs, outputs = tensors(loaded)
    text, _ = Cards(cards_root=cards).card_text(model.metadata_uri)
    found.update(inputs=[asdict(t) for t in inputs], outputs=[asdict(t) for t in outputs],
                 exampleInput=example_input(text, list(loaded.inputs))[0])
    return found


def _shape_text(tensor: dict) -> str:
    """`  [N, 4]` for a tensor (a named or `?` size is any size), nothing for sequences and maps."""
    if not tensor["type"].startswith("tensor("):
        return ""
    if tensor["shape"] is None:
        return "  any shape"
    return "  [" + ", ".join("?" if dim is None else str(dim) for dim in tensor["shape"]) + "]"


@hub_command(models)
@click.argument("file", type=FILE)
@click.option("--relayer", "relayers", multiple=True, metavar="URL|ADDRESS",
              help="A relayer to upload to (repeatable; default: every active registered relayer).")
@click.option("--model", "model_id", type=MODEL,
              help="The model the file belongs to, by id or OWNER/NAME (default: any model with a version "
                   "of this file).")
@click.option("--version", "version", type=click.IntRange(1), help="With --model: the version the file is.")
def push(session: Session, file: Path, relayers: tuple[str, ...], model_id: int | None,
         version: int | None) -> None:
    """Upload the file, or the model card, of an existing model version to relayers.

    FILE's sha-256 is checked against the chain first: it must be the file of a version of
    --model (of that --version), or of some model, or the card a version names by its content
    (registered with --card). Relayers store only registered files and fetch missing ones from
    each other, so one relayer holding it is enough for all.
    """
    from ..relayer_client import RelayerClient
    from ..store import digest_to_cid, file_digest
    from ..verdict import card_uri

    if version is not None and model_id is None:
        raise click.UsageError("--version needs --model: the model whose version FILE is")
    hub = session.hub
    data = file.read_bytes()
    digest = file_digest(data)
    what = f"{file.name} (sha-256 0x{digest.hex()}, {digest_to_cid(digest)})"
    matches = [(m, v) for m, v in hub.versions_with_card(card_uri(data))
               if model_id in (None, m) and version in (None, v)]
    kind = "card" if matches else "file"
    matches = matches or _versions_of(hub, digest, what, model_id, version)
    targets = _push_targets(hub, relayers)
    results = []
    for address, url in targets:
        try:
            RelayerClient(url).post_artifact(data)
        except e.ModelHubError as error:
            results.append({"relayer": address, "url": url, "stored": False, "error": str(error)})
        else:
            results.append({"relayer": address, "url": url, "stored": True})
    failed = [r for r in results if not r["stored"]]
    if len(failed) == len(results) or (relayers and failed):
        raise HubError("; ".join(r["error"] for r in failed))
    for result in failed:
        session.note(f"warning: {result['error']}")
    versions = ", ".join(f"model {m} version {v}" for m, v in matches)
    session.emit(
        {"digest": "0x" + digest.hex(), "cid": digest_to_cid(digest),
         "versions": [{"modelId": m, "version": v} for m, v in matches], "relayers": results},
        "\n".join([f"{file.name} is the {kind} of {versions} ({digest_to_cid(digest)})"]
                  + [f"  {'stored at' if r['stored'] else 'NOT stored at'} {r['relayer']} {r['url']}"
                     for r in results]))


def _versions_of(hub: Any, digest: bytes, what: str, model_id: int | None,
                 version: int | None) -> list[tuple[int, int]]:
    """The (model, version) pairs whose file has `digest`, as narrowed by --model/--version;
    a HubError saying what FILE is not, when none."""
    if model_id is None:
        matches = hub.versions_with_file(digest)
        if not matches:
            raise HubError(f"{what} is the file or card of no model version on this deployment; register it "
                           "with `modelhub models upload FILE` (a card: `--card FILE`) or publish it as a new "
                           "version with `modelhub models publish ID FILE`")
        return matches
    model = hub.get_model(model_id)
    if version is not None:
        if version > model.latest_version:
            raise HubError(f"model {model_id} has versions 1 to {model.latest_version}, not {version}")
        file = model.versions[version - 1]
        if file.digest != digest:
            raise HubError(f"{what} is not version {version} of model {model_id}, whose file is {file.cid} "
                           f"(sha-256 0x{file.digest.hex()}); push that file instead")
        return [(model_id, version)]
    matches = [(model_id, v.version) for v in model.versions if v.digest == digest]
    if not matches:
        listed = ", ".join(f"{v.version}: {v.cid}" for v in model.versions)
        raise HubError(f"{what} is the file of no version of model {model_id} (versions {listed}); push one "
                       "of those, or publish this file with `modelhub models publish`")
    return matches


def _push_targets(hub: Any, relayers: tuple[str, ...]) -> list[tuple[str, str]]:
    """(address, URL) of the relayers to upload to: those given (each checked active), else
    every active registered relayer."""
    if relayers:
        return [hub.resolve_relayer(relayer) for relayer in relayers]
    found = [info for info in (hub.relayer_info(a) for a in hub.registered_relayers()) if info.active and info.endpoint]
    if not found:
        raise HubError("no active relayer is registered on this deployment; pass one with --relayer URL")
    return [(info.address, info.endpoint.rstrip("/")) for info in found]


@hub_command(models)
@click.argument("model_id", type=MODEL)
@click.argument("file", type=FILE)
@click.option("--metadata-uri", default="", help="URI of this version's model card.")
@_card_option
@_storage_options
def publish(session: Session, model_id: int, file: Path, metadata_uri: str, card: Path | None,
            relayer_url: str | None, store: Path | None) -> None:
    """Publish the ONNX model FILE as the latest version of model MODEL_ID (owner only)."""
    uri = _card_uri(card, metadata_uri)
    result = session.hub.publish_version(model_id, file, metadata_uri, store=_store(store),
                                         relayer_url=relayer_url, card=card)
    session.emit(
        {"modelId": model_id, "version": result.version, "digest": "0x" + result.digest.hex(),
         "cid": result.cid, "metadataURI": uri},
        f"Published version {result.version} of model {model_id}: {result.cid}" + _card_line(card, uri, relayer_url),
    )


@hub_command(models, epilog=AMOUNTS_HELP)
@click.argument("model_id", type=MODEL)
@click.argument("price", type=AMOUNT)
def price(session: Session, model_id: int, price) -> None:
    """Set the price per call of model MODEL_ID (owner only); calls already paid keep theirs."""
    base = session.base(price)
    session.hub.set_price(model_id, base)
    session.emit({"modelId": model_id, "price": session.money_json(base)},
                 f"Model {model_id} now costs {session.money(base)} per call")


@hub_command(models)
@click.argument("model_id", type=MODEL)
@click.argument("payees", nargs=-1, required=True, metavar="ACCOUNT:BPS...")
def payees(session: Session, model_id: int, payees: tuple[str, ...]) -> None:
    """Share the revenue of model MODEL_ID among 1 to 8 payees (owner only).

    Each payee is ACCOUNT:BPS, ACCOUNT an address (or an Ape alias, or TEST::<n>) and BPS its
    share in basis points; the shares sum to 10000. Example:
    0xAbc...:7000 0xDef...:3000
    """
    parsed = [_payee(text) for text in payees]
    session.hub.set_payees(model_id, parsed)
    session.emit(
        {"modelId": model_id, "payees": [{"account": a, "bps": s} for a, s in parsed]},
        f"Model {model_id} pays " + ", ".join(f"{a} {s} bps" for a, s in parsed),
    )


def _payee(text: str) -> tuple[str, int]:
    account, sep, share = text.rpartition(":")
    if not sep or not account or not share.isdigit():
        raise click.BadParameter(f"{text!r} is not ACCOUNT:BPS, e.g. 0xAbc...:5000",
                                 param_hint="ACCOUNT:BPS")
    from eth_utils import is_address, to_checksum_address

    if is_address(account):
        return to_checksum_address(account), int(share)
    from ape.cli.choices import AccountAliasPromptChoice

    try:
        return AccountAliasPromptChoice().convert(account, None, None).address, int(share)
    except click.BadParameter:
        raise click.BadParameter(f"{account!r} is neither an address nor an account alias",
                                 param_hint="ACCOUNT:BPS") from None


def _set_active(session: Session, model_id: int, active: bool) -> None:
    session.hub.set_active(model_id, active)
    state = "active: it takes new calls" if active else "inactive: it takes no new calls"
    session.emit({"modelId": model_id, "active": active}, f"Model {model_id} is now {state}")


@hub_command(models)
@click.argument("model_id", type=MODEL)
@click.option("--off", is_flag=True, help="Deactivate instead (same as `models deactivate`).")
def activate(session: Session, model_id: int, off: bool) -> None:
    """Let model MODEL_ID take new calls again (owner only)."""
    _set_active(session, model_id, not off)


@hub_command(models)
@click.argument("model_id", type=MODEL)
def deactivate(session: Session, model_id: int) -> None:
    """Stop model MODEL_ID from taking new calls (owner only); paid calls still settle."""
    _set_active(session, model_id, False)


def _model_json(session: Session, model: Any, details: bool) -> dict:
    data = {"id": model.id, "name": model.name, "owner": model.owner,
            "price": session.money_json(model.price), "latestVersion": model.latest_version,
            "active": model.active, "metadataURI": model.metadata_uri, "calls": model.calls,
            "revenue": session.money_json(model.revenue)}
    if details:
        data["versions"] = [{"version": v.version, "digest": "0x" + v.digest.hex(), "cid": v.cid,
                             "publishedAt": v.published_at} for v in model.versions]
        data["payees"] = [{"account": p.account, "bps": p.share} for p in model.payees]
    return data

