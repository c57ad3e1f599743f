"""The simulator's reports: report.json (everything, exact balances included), report.html and
PNG figures per run, and the same for a sweep, comparing its runs. Nothing in them depends on the
wall clock, so a seed gives the same files byte for byte.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from .metrics import lorenz
from .run import Outcome, Point
from .scenario import TOKEN

FIGURE_DPI = 96
SMOOTH_DAYS = 7

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
.yes{color:#070;font-weight:bold}.no{color:#a00;font-weight:bold}code,pre{background:#f6f6f6}pre{padding:1em}"""


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    # No "Software" entry: the PNG then holds nothing but the picture.
    fig.savefig(path, dpi=FIGURE_DPI, metadata={"Software": None})
    _pyplot().close(fig)


def _smooth(values: list[float]) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    if len(x) < SMOOTH_DAYS:
        return x
    kernel = np.ones(SMOOTH_DAYS) / SMOOTH_DAYS
    head = np.cumsum(x[: SMOOTH_DAYS - 1]) / np.arange(1, SMOOTH_DAYS)
    return np.concatenate([head, np.convolve(x, kernel, mode="valid")])


def _ratio(part: list[float], whole: list[float]) -> np.ndarray:
    p, w = _smooth(part), _smooth(whole)
    return np.divide(p, w, out=np.zeros_like(p), where=w > 0)


def figures(outcome: Outcome, folder: Path) -> list[tuple[str, str]]:
    """Writes the run's PNG figures into `folder`; returns (file name, caption) pairs."""
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    days = outcome.days
    x = [d.day for d in days]
    col = {name: [getattr(d, name) for d in days] for name in days[0].__dataclass_fields__}
    made: list[tuple[str, str]] = []

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(x, col["active_models"], label="active models")
    ax.plot(x, col["active_good_models"], label="active good models")
    ax.plot(x, np.cumsum(col["entered"]), label="entered (total)", linestyle="--")
    ax.plot(x, np.cumsum(col["left"]), label="left (total)", linestyle=":")
    ax.set(xlabel="day", ylabel="models", title="Models entering and leaving")
    ax.legend()
    _save(fig, folder / "models.png")
    made.append(("models.png", "Models over time: active, active good ones, entries and exits"))

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(x, col["calls"], color="tab:gray", label="paid calls per day")
    ax.set(xlabel="day", ylabel="paid calls per day", title="Calls, and the share going to the best models")
    right = ax.twinx()
    right.plot(x, _ratio(col["calls_good"], col["calls"]), color="tab:green", label="share to good models")
    right.plot(x, _ratio(col["calls_top"], col["calls"]), color="tab:purple", label="share to the top tenth")
    right.set(ylabel=f"share of calls ({SMOOTH_DAYS}-day mean)", ylim=(0, 1))
    fig.legend(loc="upper left", bbox_to_anchor=(0.1, 0.88))
    _save(fig, folder / "calls.png")
    made.append(("calls.png", "Paid calls per day, and the shares going to good models and to the top tenth by quality"))

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(x, _ratio(col["payee_earned_good"], col["payee_earned"]), color="tab:green", label="good models")
    left.plot(x, _ratio(col["payee_earned_top"], col["payee_earned"]), color="tab:purple", label="top tenth")
    left.set(xlabel="day", ylabel="share of uploader earnings", ylim=(0, 1), title="Earnings to the best models")
    left.legend()
    people, wealth = lorenz(outcome.market.u.earned[outcome.market.u.entered >= 0])
    right.plot(people, wealth, label="uploaders")
    right.plot([0, 1], [0, 1], color="gray", linestyle=":", label="equal")
    right.set(xlabel="share of uploaders (poorest first)", ylabel="share of earnings",
              title=f"Lorenz curve, Gini {outcome.summary['uploaders']['gini']:.2f}")
    right.legend()
    fig.tight_layout()
    _save(fig, folder / "earnings.png")
    made.append(("earnings.png", "Uploader earnings: shares to the best models, and how unequal they are"))

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(x, np.cumsum(col["caller_surplus"]) / TOKEN, color="tab:blue", label="callers' surplus (total, tokens)")
    ax.set(xlabel="day", ylabel="tokens", title="Caller surplus: value of good outputs minus what was paid")
    right = ax.twinx()
    right.plot(x, col["active_callers"], color="tab:orange", label="active callers")
    right.set(ylabel="active callers")
    fig.legend(loc="upper left", bbox_to_anchor=(0.1, 0.88))
    _save(fig, folder / "callers.png")
    made.append(("callers.png", "Callers: cumulative surplus and how many are active"))

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(x, _smooth(col["relayer_earned"]) / TOKEN, label="relayers' fees per day")
    ax.plot(x, _smooth(col["relayer_costs"]) / TOKEN, label="relayers' costs per day")
    ax.set(xlabel="day", ylabel=f"tokens per day ({SMOOTH_DAYS}-day mean)", title="Relayer margin")
    right = ax.twinx()
    right.step(x, col["active_relayers"], color="tab:gray", where="post", label="bonded relayers")
    right.set(ylabel="bonded relayers")
    fig.legend(loc="upper left", bbox_to_anchor=(0.1, 0.88))
    _save(fig, folder / "relayers.png")
    made.append(("relayers.png", "Relayers: fees against costs, and how many are bonded"))

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(x, np.asarray(col["median_price"]) / TOKEN)
    ax.set(xlabel="day", ylabel="tokens per call", title="Median price of active models")
    _save(fig, folder / "prices.png")
    made.append(("prices.png", "Median price per call of the active models"))
    return made


def _rows(table: dict, prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _rows(value, name + ".")
        else:
            rows.append((name, _fmt(value)))
    return rows


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(rows: list[tuple[str, str]], head: tuple[str, ...] = ("figure", "value")) -> str:
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>" + cells + "</table>"


def _verdict(summary: dict) -> str:
    v = summary["verdict"]
    word = '<span class="yes">took off</span>' if v["took_off"] else '<span class="no">did not take off</span>'
    parts = [
        f"paid calls per day {v['calls_per_day_first']:,.0f} in the first {v['window_days']} days, "
        f"{v['calls_per_day_last']:,.0f} in the last ({'at least' if v['demand_grew'] else 'less than'} doubled)",
        f"active models {v['active_models_after_first_window']} then {v['active_models_at_end']} "
        f"({'held or grew' if v['supply_held'] else 'shrank'})",
        f"good models' share of calls at the end {v['good_call_share_last']:.0%} "
        f"({'a majority' if v['good_models_won'] else 'not a majority'})",
        f"{v['established_good_paid_share']:.0%} of the {v['established_good_models']} established good models "
        f"earned their running costs ({'most' if v['uploading_paid'] else 'not most'})",
        f"relayers' margin at the end {v['relayer_margin_last']:.0%} "
        f"({'serving paid' if v['serving_paid'] else 'serving did not pay'})",
    ]
    return f"<p>The loop {word}: " + "; ".join(html.escape(p) for p in parts) + ".</p>"


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{body}</body></html>\n")


def _dump(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def write_run(outcome: Outcome, out: Path) -> Path:
    """report.json, report.html and figures/ for one run into `out`; returns the HTML's path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(_dump(outcome.as_json()))
    made = figures(outcome, out / "figures")
    s = outcome.scenario
    conservation = outcome.market.ledger.totals()
    body = [
        f"<h1>Scenario {html.escape(s.name)}</h1>",
        f"<p>{html.escape(s.description)}</p>" if s.description else "",
        f"<p>{s.days} days, seed {outcome.seed}, {html.escape(outcome.mode)} mode; fees: treasury "
        f"{s.protocol.protocol_fee_bps} bps, relayer {s.protocol.relayer_fee_bps} bps; discovery by "
        f"{html.escape(s.callers.discovery)}"
        + (f" (sorted by {html.escape(s.callers.sort)}, {html.escape(s.callers.window)})"
           if s.callers.discovery == "signals" else "") + ".</p>",
        _verdict(outcome.summary),
        "<h2>Headline figures</h2>",
        "<p>Amounts in tokens. \"Good\" models have quality of at least "
        f"{s.uploaders.quality.good_threshold:g}; the top tenth are the best tenth by quality of "
        "those that entered.</p>",
        _table(_rows({k: v for k, v in outcome.summary.items() if k != "verdict"})),
    ]
    for name, caption in made:
        body.append(f"<h3>{html.escape(caption)}</h3><img src=\"figures/{name}\" alt=\"{html.escape(caption)}\">")
    body += [
        "<h2>Where the tokens are at the end</h2>",
        "<p>Base units. Minted = wallets + free credit + reservations + earnings + bonds, checked after every day.</p>",
        _table([("minted", _fmt(outcome.balances["minted"]))] + [(k, _fmt(v)) for k, v in conservation.items()],
               ("where", "base units")),
        "<h2>The scenario</h2>",
        f"<pre>{html.escape(json.dumps(s.model_dump(mode='json'), indent=1))}</pre>",
    ]
    path = out / "report.html"
    path.write_text(_page(f"Model Hub simulation: {s.name}", "".join(body)))
    return path


SWEEP_FIGURES = (
    ("verdict.took_off", "loop took off (share of seeds)"),
    ("calls.total", "paid calls"),
    ("calls.share_to_good_last_window", "share of calls to good models (end)"),
    ("uploaders.share_of_earnings_to_good", "share of uploader earnings to good models"),
    ("uploaders.earned", "uploader earnings (tokens)"),
    ("uploaders.gini", "uploader earnings Gini"),
    ("uploaders.profitable_share", "share of uploaders in profit"),
    ("models.active_at_end", "active models at the end"),
    ("callers.surplus", "caller surplus (tokens)"),
    ("relayers.margin", "relayer margin (share of fees)"),
    ("treasury.earned", "treasury earnings (tokens)"),
)


def _pick(summary: dict, dotted: str) -> float:
    value = summary
    for part in dotted.split("."):
        value = value[part]
    return float(value)


def write_sweep(scenario_name: str, points: list[Point], out: Path) -> Path:
    """sweep.json, sweep.html and sweep.png comparing the points (means over their seeds), and
    the report of each point's first run in a sub-folder; returns the HTML's path."""
    plt = _pyplot()
    out.mkdir(parents=True, exist_ok=True)
    folders = []
    for point in points:
        folder = "run-" + "".join(c if c.isalnum() or c in "=._-" else "_" for c in point.label.replace(", ", "_"))
        write_run(point.runs[0], out / folder)
        folders.append(folder)
    seeds = [run.seed for run in points[0].runs]
    (out / "sweep.json").write_text(_dump({
        "scenario": scenario_name, "seeds": seeds,
        "points": [{"overrides": p.overrides, "folder": f, "summary": p.summary,
                    "runs": [{"seed": r.seed, "summary": r.summary} for r in p.runs]}
                   for p, f in zip(points, folders)],
    }))
    columns = 3
    rows = -(-len(SWEEP_FIGURES) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows))
    positions = np.arange(len(points))
    labels = [point.label for point in points]
    for ax, (key, title) in zip(axes.flat, SWEEP_FIGURES):
        ax.bar(positions, [_pick(point.summary, key) for point in points], color="tab:blue")
        ax.set_title(title, fontsize=9)
        ax.set_xticks(positions, labels, rotation=30, ha="right", fontsize=7)
    for ax in list(axes.flat)[len(SWEEP_FIGURES):]:
        ax.axis("off")
    fig.tight_layout()
    _save(fig, out / "sweep.png")
    head = ("run",) + tuple(title for _, title in SWEEP_FIGURES)
    table = [(p.label,) + tuple(_fmt(_pick(p.summary, key)) for key, _ in SWEEP_FIGURES) for p in points]
    links = "".join(f"<li><a href=\"{f}/report.html\">{html.escape(p.label)}</a> (seed {p.runs[0].seed})</li>"
                    for p, f in zip(points, folders))
    over = (f"the mean over seeds {', '.join(map(str, seeds))} (\"took off\": the share of seeds where it did)"
            if len(seeds) > 1 else f"seed {seeds[0]}")
    body = (f"<h1>Sweep of {html.escape(scenario_name)}</h1><p>Every point runs with the same seeds; only the swept "
            f"parameters differ. Figures: {html.escape(over)}.</p>{_table(table, head)}"
            f"<img src=\"sweep.png\" alt=\"sweep\"><h2>Runs</h2><ul>{links}</ul>")
    path = out / "sweep.html"
    path.write_text(_page(f"Model Hub sweep: {scenario_name}", body))
    return path
