"""`intercept report`: interception analytics over the stored cases, as figures (JSON), a text
summary, and a self-contained HTML page with its plots embedded (the PNGs written beside it).

The figures come from adapters/db/read_models/analytics.py (the read model the console and the
ledger share); this module only computes percentiles (nearest rank, loadtest.report) and draws.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from adapters.db.read_models.analytics import Analytics, age_bucket_order
from loadtest.report import _pyplot, percentile

PERCENTILES = (50, 90, 99)


def figures(a: Analytics) -> dict[str, Any]:
    """The report as data (what --json prints and the HTML shows)."""
    routes = {}
    for route, hours in sorted(a.hours_to_refund.items(), key=lambda kv: -len(kv[1])):
        routes[route] = {"refunds": len(hours), **{f"p{q}_h": round(percentile(hours, q), 2) for q in PERCENTILES}}
    stall = a.stall_rate
    return {
        "window": {"from": a.since.isoformat() if a.since else None, "to": a.until.isoformat() if a.until else None},
        "cases": a.cases,
        "cases_by_status": dict(sorted(a.cases_by_status.items())),
        "carrier_intercepts_by_carrier": {c: n.as_json() for c, n in sorted(a.by_carrier.items())},
        "intercepts_by_stage_and_age": [
            {"stage": stage, "age": age, **n.as_json()}
            for (stage, age), n in sorted(a.by_stage_age.items(), key=lambda kv: (kv[0][0], age_bucket_order().index(kv[0][1])))
        ],
        "time_to_refund_by_route": routes,
        "stall": {"cases_with_shipped_parcels": a.shipped_cases, "stalled": a.stalled_cases,
                  "rate": None if stall is None else round(stall, 4)},
        "fees": {**a.fees.as_json(), "by_carrier": {c: f.as_json() for c, f in sorted(a.fees_by_carrier.items())}},
        "claims": a.claims.as_json(),
    }


def _pct(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


def _cny(fen: float | None) -> str:
    return "–" if fen is None else f"{fen / 100:,.2f} CNY"


def text(f: dict[str, Any]) -> str:
    """The summary a person reads in the terminal."""
    w = f["window"]
    lines = [f"cases: {f['cases']} (requested {w['from'] or 'from the start'} to {w['to'] or 'now'})", "",
             "carrier intercepts by carrier   asked  held  failed  pending  not eligible  success"]
    for carrier, n in f["carrier_intercepts_by_carrier"].items():
        lines.append(f"  {carrier:<29} {n['requested']:>5} {n['succeeded']:>5} {n['failed']:>7} {n['pending']:>8} "
                     f"{n['not_eligible']:>13}  {_pct(n['success_rate']):>7}")
    lines += ["", "intercepts by stage and parcel age at request   asked  held  not eligible  success"]
    for row in f["intercepts_by_stage_and_age"]:
        lines.append(f"  {row['stage'] + ', ' + row['age']:<45} {row['requested']:>5} {row['succeeded']:>5} {row['not_eligible']:>13}  "
                     f"{_pct(row['success_rate']):>7}")
    lines += ["", "time to refund by route (hours)   refunds     p50     p90     p99"]
    for route, r in f["time_to_refund_by_route"].items():
        lines.append(f"  {route:<32} {r['refunds']:>7} {r['p50_h']:>7.1f} {r['p90_h']:>7.1f} {r['p99_h']:>7.1f}")
    s, fees, c = f["stall"], f["fees"], f["claims"]
    lines += ["", f"stall rate: {_pct(s['rate'])} ({s['stalled']} of {s['cases_with_shipped_parcels']} cases with shipped parcels)",
              f"fees: {_cny(fees['charged_fen'])} charged for {fees['carrier_intercepts_succeeded']} successful carrier intercepts "
              f"({fees['waived_count']} waived, {fees['refunded_count']} reversed by the carrier): {_cny(fees['fen_per_refund_avoided_by_return'])} per refund avoided by return",
              f"claims: {c['opened_count']} opened ({_cny(c['opened_fen'])}), {c['paid_count']} paid ({_cny(c['paid_fen'])}), "
              f"{c['rejected_count']} rejected, {c['outstanding_count']} outstanding ({_cny(c['outstanding_fen'])})"]
    return "\n".join(lines) + "\n"


# -- plots ------------------------------------------------------------------------------------


def _no_data(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in this window", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def _rate_bars(ax, labels: list[str], rows: list[dict]) -> None:
    """Success rate bars (0-100%), each labelled with held/decided so a bar of 2 is not read as 200."""
    rates = [(r["success_rate"] or 0) * 100 for r in rows]
    bars = ax.bar(labels, rates, color=["tab:green" if r["success_rate"] is not None else "lightgrey" for r in rows])
    for bar, r in zip(bars, rows):
        decided = r["succeeded"] + r["failed"]
        note = f"{r['succeeded']}/{decided}" if decided else "none decided"
        if r.get("not_eligible"):
            note += f"\n+{r['not_eligible']} not eligible"  # never asked: the carrier rules said no
        ax.annotate(note, (bar.get_x() + bar.get_width() / 2, bar.get_height()), xytext=(0, 3), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 119)
    ax.set_yticks([0, 25, 50, 75, 100])
    ax.set_ylabel("held (% of decided)")
    ax.grid(axis="y", alpha=0.3)


def success_by_carrier_figure(f: dict[str, Any]):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.set_title("Carrier intercepts held, by carrier")
    rows = f["carrier_intercepts_by_carrier"]
    if not rows:
        _no_data(ax, "carrier intercept")
    else:
        _rate_bars(ax, list(rows), list(rows.values()))
    fig.tight_layout()
    return fig


def success_by_stage_age_figure(f: dict[str, Any]):
    plt = _pyplot()
    rows = f["intercepts_by_stage_and_age"]
    stages = sorted({r["stage"] for r in rows})
    # Each stage's panel as wide as its buckets need, so the labels above the bars never touch.
    buckets = [sum(1 for r in rows if r["stage"] == stage) for stage in stages] or [1]
    fig, axes = plt.subplots(1, max(1, len(stages)), figsize=(max(6.0, 1.6 * sum(max(b, 2.5) for b in buckets) + 1.5 * len(buckets)), 3.8),
                             squeeze=False, gridspec_kw={"width_ratios": [max(b, 2.5) + 0.8 for b in buckets]})
    if not rows:
        _no_data(axes[0][0], "intercept")
    for ax, stage in zip(axes[0], stages):
        ax.set_title(f"{'merchant intercepts (not scanned yet)' if stage == 'shipped_unscanned' else 'carrier intercepts (in transit)'}")
        mine = [r for r in rows if r["stage"] == stage]
        _rate_bars(ax, [r["age"] for r in mine], mine)
        ax.set_xlabel("parcel age at the request (since shipment)")
    fig.tight_layout()
    return fig


def time_to_refund_figure(f: dict[str, Any], hours_by_route: dict[str, list[float]]):
    """Per route, every refund's wait as a dot on a log axis (an instant refund, under a minute,
    at the left edge), with its p50, p90 and p99 as three markers just below the dots, so equal
    percentiles of a small route stay visible side by side."""
    plt = _pyplot()
    routes = list(f["time_to_refund_by_route"])
    fig, ax = plt.subplots(figsize=(9, 0.5 * max(len(routes), 3) + 1.5))
    ax.set_title("Time from refund request to refund, by route")
    if not routes:
        _no_data(ax, "refund issued")
        fig.tight_layout()
        return fig
    floor = 1 / 60
    top = max(max(h) for h in hours_by_route.values())
    marks = ((50, "tab:green", "v"), (90, "tab:orange", "D"), (99, "tab:red", "^"))
    for y, route in enumerate(routes):
        hours = [max(h, floor) for h in hours_by_route[route]]
        ax.scatter(hours, [y - 0.12] * len(hours), s=16, alpha=0.45, color="tab:blue", zorder=2,
                   label="one refund" if y == 0 else None)
        r = f["time_to_refund_by_route"][route]
        for k, (q, colour, marker) in enumerate(marks):
            ax.scatter([max(r[f"p{q}_h"], floor)], [y + 0.14 + 0.1 * k], marker=marker, s=30, color=colour, zorder=3,
                       label=f"p{q}" if y == 0 else None)
    ticks = [(1 / 60, "≤ 1 min"), (10 / 60, "10 min"), (1, "1 h"), (6, "6 h"), (24, "1 d"), (48, "2 d"), (96, "4 d"),
             (168, "7 d"), (336, "14 d"), (720, "30 d")]
    high = max(top, 1) * 1.5
    ax.set_xscale("log")
    ax.set_xlim(floor / 1.5, high)
    ax.set_xticks([v for v, _ in ticks if v <= high], [label for v, label in ticks if v <= high])
    ax.minorticks_off()
    ax.set_yticks(range(len(routes)), [f"{route} (n={len(hours_by_route[route])})" for route in routes])
    ax.set_ylim(len(routes) - 0.4, -0.6)
    ax.set_xlabel("story time from the request, log scale")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=8, ncols=4, frameon=False)
    fig.tight_layout()
    return fig


def money_figure(f: dict[str, Any]):
    plt = _pyplot()
    fees, claims = f["fees"], f["claims"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.set_title("Fees per carrier (CNY)")
    by = fees["by_carrier"]
    if by:
        names = list(by)
        charged = [by[c]["charged_fen"] / 100 for c in names]
        waived = [by[c]["waived_fen"] / 100 for c in names]
        left.bar(names, charged, label="charged", color="tab:red")
        left.bar(names, waived, bottom=charged, label="waived (free quota)", color="tab:gray", alpha=0.5)
        for i, c in enumerate(names):
            per = by[c]["fen_per_refund_avoided_by_return"]
            left.annotate("–" if per is None else f"{per / 100:.2f} CNY\nper return avoided", (i, charged[i] + waived[i]), xytext=(0, 3),
                          textcoords="offset points", ha="center", fontsize=8)
        left.set_ylim(0, max(c + w for c, w in zip(charged, waived)) * 1.5 or 1)
        left.legend(fontsize=8, loc="upper left")
        left.grid(axis="y", alpha=0.3)
    else:
        _no_data(left, "fee")
    right.set_title("Claims (CNY)")
    if claims["opened_count"]:
        values = [claims["opened_fen"] / 100, claims["paid_fen"] / 100, claims["outstanding_fen"] / 100]
        bars = right.bar(["opened", "paid", "outstanding"], values, color=["tab:blue", "tab:green", "tab:orange"])
        for bar, n in zip(bars, (claims["opened_count"], claims["paid_count"], claims["outstanding_count"])):
            right.annotate(f"{n} claim{'s' * (n != 1)}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), xytext=(0, 3),
                           textcoords="offset points", ha="center", fontsize=8)
        right.set_ylim(0, max(values) * 1.2)
        right.grid(axis="y", alpha=0.3)
    else:
        _no_data(right, "claim")
    fig.tight_layout()
    return fig


# -- the page ---------------------------------------------------------------------------------


def write_html(out: Path, a: Analytics, f: dict[str, Any]) -> list[Path]:
    """The page at `out`, its plots embedded; the same plots as PNGs beside it. Returns the PNGs."""
    plt = _pyplot()
    out.parent.mkdir(parents=True, exist_ok=True)
    plots = [("success-by-carrier", "Carrier intercepts held, by carrier", success_by_carrier_figure(f)),
             ("success-by-stage-age", "Intercepts held, by stage and parcel age at request", success_by_stage_age_figure(f)),
             ("time-to-refund", "Time to refund, by route", time_to_refund_figure(f, a.hours_to_refund)),
             ("fees-and-claims", "Fees and claims", money_figure(f))]
    pngs, sections = [], []
    for name, title, fig in plots:
        path = out.with_name(f"{out.stem}-{name}.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        pngs.append(path)
        data = base64.b64encode(path.read_bytes()).decode()
        sections.append(f'<h2>{html.escape(title)}</h2>\n<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">')
    body = "\n".join(sections)
    summary = html.escape(text(f))
    out.write_text(_PAGE.format(title="Interception report", summary=summary, plots=body,
                                data=html.escape(json.dumps(f, indent=1, ensure_ascii=False))), encoding="utf-8")
    return pngs


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #1d2330; }}
pre {{ background: #f6f7f9; border: 1px solid #d9dee7; padding: 12px; overflow-x: auto; font-size: 12.5px; }}
img {{ max-width: 100%; border: 1px solid #d9dee7; }}
details {{ margin-top: 24px; }}
</style></head>
<body>
<h1>{title}</h1>
<p>Interception analytics over the stored cases (<code>intercept report</code>). Times are story times (the
events' own); percentiles are nearest-rank, so each is a wait some refund actually had.</p>
<pre>{summary}</pre>
{plots}
<details><summary>The figures as JSON (<code>intercept report --json</code>)</summary><pre>{data}</pre></details>
</body></html>
"""
