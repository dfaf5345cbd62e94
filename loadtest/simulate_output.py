"""What `intercept simulate` writes: a table for the terminal, an HTML page with plots, and each
policy's outbound events as JSON Lines. Deterministic: the same figures give the same bytes (the
PNGs carry no software or date stamp, the page no time)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any, Iterable

from loadtest.simulate import PolicyRun

# ------------------------------------------------------------------------------ rows


def cny(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"


def _rows(result: dict[str, Any]) -> list[tuple[str, str, list[Any]]]:
    """(label, kind, value per policy): kind is count, fen, hours or text."""
    pols = result["policies"]

    def each(getter) -> list[Any]:
        out = []
        for f in pols:
            try:
                out.append(getter(f))
            except (KeyError, TypeError):
                out.append(None)
        return out

    def union(key: str) -> list[str]:
        return sorted({k for f in pols for k in f[key]})

    rows: list[tuple[str, str, list[Any]]] = [("version", "text", each(lambda f: f["version"]))]
    rows.append(("refunds issued", "count", each(lambda f: f["refunds_issued_total"]["count"])))
    rows.append(("refunds issued, CNY", "fen", each(lambda f: f["refunds_issued_total"]["amount_fen"])))
    for route in union("refunds_issued"):
        rows.append((f"  by route: {route}", "count", each(lambda f, r=route: f["refunds_issued"][r]["count"])))
    for route in union("time_to_refund"):
        rows.append((f"time to refund p50/p90/p99, h: {route}", "hours3",
                     each(lambda f, r=route: tuple(f["time_to_refund"][r][f"{q}_h"] for q in ("p50", "p90", "p99")))))
    for carrier in union("intercepts"):
        rows.append((f"intercepts requested: {carrier}", "count", each(lambda f, c=carrier: f["intercepts"][c]["requested"])))
        rows.append((f"intercepts succeeded: {carrier}", "count", each(lambda f, c=carrier: f["intercepts"][c]["succeeded"])))
    rows.append(("intercepts not worth trying", "count", each(lambda f: f["intercepts_not_worth_trying"]["count"])))
    rows.append(("  their expected saving (model), CNY", "fen", each(
        lambda f: f["intercepts_not_worth_trying"]["expected_cost_trying_fen"] - f["intercepts_not_worth_trying"]["expected_cost_not_trying_fen"])))
    rows.append(("fees charged", "count", each(lambda f: f["fees"]["charged_count"])))
    rows.append(("fees charged, CNY", "fen", each(lambda f: f["fees"]["charged_fen"])))
    rows.append(("fees waived", "count", each(lambda f: f["fees"]["waived_count"])))
    rows.append(("fees waived, CNY", "fen", each(lambda f: f["fees"]["waived_fen"])))
    rows.append(("claims opened", "count", each(lambda f: f["claims"]["opened_count"])))
    rows.append(("claims opened, CNY", "fen", each(lambda f: f["claims"]["opened_fen"])))
    rows.append(("buyers asked to refuse", "count", each(lambda f: f["buyers_asked_to_refuse"])))
    rows.append(("return windows closed without a return", "count", each(lambda f: f["return_windows_closed_without_return"])))
    rows.append(("inputs kept aside", "count", each(lambda f: f["inputs_kept_aside"])))
    rows.append(("outbound events", "count", each(lambda f: f["outbound_events"])))
    return rows


def _cell(kind: str, value: Any, first: Any, show_diff: bool) -> str:
    if value is None:
        return "-"
    if kind == "text":
        return str(value)
    if kind == "hours3":  # differences for these are in the JSON
        return " / ".join(f"{v:.1f}" for v in value)
    text = cny(value) if kind == "fen" else (f"{value:.2f}" if kind == "hours" else f"{value:,}")
    if show_diff and first is not None and value != first:
        d = value - first
        sign = "+" if d > 0 else "-"
        amount = cny(abs(d)) if kind == "fen" else (f"{abs(d):.2f}" if kind == "hours" else f"{abs(d):,}")
        text += f" ({sign}{amount})"
    return text


def table_rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["figure"] + [f["policy"] for f in result["policies"]]
    body = []
    for label, kind, values in _rows(result):
        first = values[0]
        body.append([label] + [_cell(kind, v, first, i > 0) for i, v in enumerate(values)])
    return header, body


def figures_table(result: dict[str, Any]):
    from rich.table import Table  # noqa: PLC0415

    s = result["stream"]
    header, body = table_rows(result)
    table = Table(title=f"{s['received']} inputs, {s['ordered']} in order ({s['duplicates']} duplicates, {s['refused']} refused, "
                        f"{s['parked_at_end']} still parked)", title_justify="left",
                  caption=f"differences from {header[1]} in brackets; money in CNY", caption_justify="left")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right", no_wrap=True)
    for row in body:
        table.add_row(*row)
    return table


# ------------------------------------------------------------------------------ outcomes


def write_outcomes(directory: Path, runs: Iterable[PolicyRun]) -> list[tuple[Path, int]]:
    """One `<policy>.jsonl` per policy, each line as `intercept run --out` writes it."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for run in runs:
        path = directory / f"{run.label}.jsonl"
        envelopes = run.envelopes()
        with open(path, "w", encoding="utf-8") as fh:
            for env in envelopes:
                fh.write(json.dumps(env, ensure_ascii=False, sort_keys=True) + "\n")
        written.append((path, len(envelopes)))
    return written


# ------------------------------------------------------------------------------ html


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _bars(ax, groups: list[str], series: list[tuple[str, list[float]]], ylabel: str, title: str) -> None:
    n = max(1, len(series))
    width = 0.8 / n
    for i, (name, values) in enumerate(series):
        xs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, values, width=width, label=name)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)


def plots(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(title, base64 PNG) of each plot."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    pols = result["policies"]
    names = [f["policy"] for f in pols]
    out = []

    routes = sorted({r for f in pols for r in f["refunds_issued"]})
    fig, ax = plt.subplots(figsize=(8, 4))
    _bars(ax, routes, [(n, [f["refunds_issued"].get(r, {}).get("count", 0) for r in routes]) for n, f in zip(names, pols)],
          "refunds", "Refunds issued by route")
    fig.tight_layout()
    out.append(("Refunds issued by route", _png(fig)))
    plt.close(fig)

    timed = sorted({r for f in pols for r in f["time_to_refund"]})
    fig, ax = plt.subplots(figsize=(8, 4))
    _bars(ax, timed, [(f"{n} p90", [f["time_to_refund"].get(r, {}).get("p90_h", 0) for r in timed]) for n, f in zip(names, pols)],
          "hours", "Time to refund, p90 by route")
    fig.tight_layout()
    out.append(("Time to refund (p90) by route", _png(fig)))
    plt.close(fig)

    money = ["fees charged", "fees waived", "claims opened"]
    fig, ax = plt.subplots(figsize=(8, 4))
    _bars(ax, money, [(n, [f["fees"]["charged_fen"] / 100, f["fees"]["waived_fen"] / 100, f["claims"]["opened_fen"] / 100])
                      for n, f in zip(names, pols)], "CNY", "Fees and claims")
    fig.tight_layout()
    out.append(("Fees and claims", _png(fig)))
    plt.close(fig)

    carriers = sorted({c for f in pols for c in f["intercepts"]})
    fig, ax = plt.subplots(figsize=(8, 4))
    series = []
    for n, f in zip(names, pols):
        series.append((f"{n} requested", [f["intercepts"].get(c, {}).get("requested", 0) for c in carriers]))
        series.append((f"{n} succeeded", [f["intercepts"].get(c, {}).get("succeeded", 0) for c in carriers]))
    _bars(ax, carriers, series, "intercepts", "Intercepts by carrier")
    fig.tight_layout()
    out.append(("Intercepts by carrier", _png(fig)))
    plt.close(fig)
    return out


def render_html(result: dict[str, Any]) -> str:
    header, body = table_rows(result)
    s = result["stream"]
    esc = html.escape
    rows = "\n".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in body)
    images = "\n".join(f'<h2>{esc(t)}</h2>\n<img alt="{esc(t)}" src="data:image/png;base64,{b}">' for t, b in plots(result))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>intercept simulate</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px}}
td:not(:first-child){{text-align:right}}</style></head><body>
<h1>What-if simulation: {esc(', '.join(header[1:]))}</h1>
<p>{s['received']} inputs, {s['ordered']} in order ({s['duplicates']} duplicates, {s['refused']} refused, {s['parked_at_end']} still parked).
Differences from <b>{esc(header[1])}</b> in brackets. Money in CNY, times in hours.</p>
<table><tr>{''.join(f'<th>{esc(h)}</th>' for h in header)}</tr>
{rows}
</table>
{images}
</body></html>
"""


def write_html(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(result), encoding="utf-8")
