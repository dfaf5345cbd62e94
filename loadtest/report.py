"""Load-test reports: latency percentiles, throughput, outcome counts and a digest of the outcomes.

Pure functions over measurements and outbound envelopes, plus `write_report`, which writes
`report.json`, `report.md`, `throughput.png` and `latency.png` to a directory. No broker, no
database: the runner collects (event_id, published_at, committed_at) per inbound event and the
outbound envelopes, and hands them over.

Percentiles use the nearest-rank method: pN is the smallest measured value with at least N% of
the values at or below it, so every reported figure is a latency that was actually observed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

REPORT_VERSION = 1


@dataclass(frozen=True)
class Measurement:
    """One inbound event: when the load generator published it and when its effects committed.

    Times are seconds on one clock (e.g. `time.time()` of the runner)."""

    event_id: str
    published_at: float
    committed_at: float
    # When a relay had the input, before it waited for its message to fill (default: published).
    arrived_at: float | None = None

    @property
    def latency_s(self) -> float:
        return self.committed_at - self.published_at

    @property
    def storefront_latency_s(self) -> float:
        """What a storefront sees: the input accepted by a relay -> its effects committed."""
        return self.committed_at - (self.published_at if self.arrived_at is None else self.arrived_at)


def measurements_from_records(records: Iterable[Mapping[str, Any]]) -> list[Measurement]:
    return [Measurement(str(r["event_id"]), float(r["published_at"]), float(r["committed_at"]),
                        float(r["arrived_at"]) if r.get("arrived_at") is not None else None) for r in records]


# -- statistics -----------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        raise ValueError("no values")
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_stats(latencies_s: Iterable[float]) -> dict[str, Any]:
    """Count, mean, p50/p95/p99 and max, in milliseconds."""
    values = sorted(latencies_s)
    if not values:
        return {"count": 0}
    ms = [v * 1000.0 for v in values]
    return {
        "count": len(ms),
        "mean_ms": round(sum(ms) / len(ms), 3),
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(ms[-1], 3),
    }


# docs/ingress-limits.md, "Answer time under load": the ingress's p99 answer time while the
# workers are behind. The senders give up after 5 s (Shopify, Douyin's open platform) to 20 s
# (Kuaidi100), one third-party source says 2 s for Doudian (/work/shared/reference/formats.md);
# 1 s keeps a margin under the shortest of them.
INGRESS_P99_BUDGET_MS = 1000.0


def ingress_probe_stats(answers: Iterable[Sequence[Any]], budget_p99_ms: float = INGRESS_P99_BUDGET_MS) -> dict[str, Any]:
    """The ingress probe's answers, (seconds in, ms, HTTP status or None for no answer), as the
    report's figures: requests, those not answered 2xx, p50/p99/max in ms, and whether the p99
    kept its budget with every request answered 2xx."""
    rows = [(float(t), float(ms), status) for t, ms, status in answers]
    ms_sorted = sorted(ms for _, ms, _ in rows)
    non_2xx = sum(1 for _, _, status in rows if status is None or not 200 <= int(status) < 300)
    out: dict[str, Any] = {"requests": len(rows), "non_2xx": non_2xx}
    if ms_sorted:
        out |= {"p50_ms": round(percentile(ms_sorted, 50), 3), "p99_ms": round(percentile(ms_sorted, 99), 3),
                "max_ms": round(ms_sorted[-1], 3)}
    out["budget_p99_ms"] = budget_p99_ms
    out["within_budget"] = bool(ms_sorted) and non_2xx == 0 and out["p99_ms"] <= budget_p99_ms
    out["statuses"] = dict(sorted(Counter("no answer" if s is None else str(s) for _, _, s in rows).items()))
    out["series"] = [[t, ms] for t, ms, _ in rows]
    return out


def latency_along_the_run(measurements: Sequence[Measurement], parts: int = 10) -> list[dict[str, Any]]:
    """The run's inputs in publishing order, cut into `parts` equal shares, with each share's
    latency: a slow stretch (a generated stream's tick-dense tail, a backlog) shows where it is,
    which one percentile over the whole run hides."""
    ordered = sorted(measurements, key=lambda m: m.published_at)
    if not ordered:
        return []
    start = ordered[0].published_at
    out = []
    for k in range(parts):
        share = ordered[k * len(ordered) // parts:(k + 1) * len(ordered) // parts]
        if not share:
            continue
        stats = latency_stats(m.latency_s for m in share)
        out.append({"inputs": f"{k * len(ordered) // parts + 1}-{k * len(ordered) // parts + len(share)}",
                    "published_s": [round(share[0].published_at - start, 3), round(share[-1].published_at - start, 3)],
                    "p50_ms": stats["p50_ms"], "p99_ms": stats["p99_ms"], "max_ms": stats["max_ms"]})
    return out


def throughput_series(measurements: Sequence[Measurement], bucket_s: float = 1.0) -> list[tuple[float, int]]:
    """Commits per bucket, as (seconds since the first publish, count); empty buckets included."""
    if not measurements:
        return []
    t0 = min(m.published_at for m in measurements)
    counts: Counter[int] = Counter(int((m.committed_at - t0) // bucket_s) for m in measurements)
    last = max(counts)
    return [(b * bucket_s, counts.get(b, 0)) for b in range(0, last + 1)]


# -- outcomes -------------------------------------------------------------------------------


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def outcome_digest(envelopes: Iterable[Mapping[str, Any]]) -> str:
    """sha256 over the sorted canonical JSON of the outbound events: equal outcomes, equal digest.

    Sorting makes it independent of publication order (workers finish in any order); since
    outbound ids derive from their causes (docs/domain.md §7), a replay must give the same digest."""
    lines = sorted(canonical_json(dict(env)) for env in envelopes)
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def outcome_summary(envelopes: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts by type, refund.issued by route, failures by reason, fees and claims in fen."""
    by_type: Counter[str] = Counter()
    routes: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    closed: Counter[str] = Counter()
    fees = {"charged_count": 0, "charged_fen": 0, "waived_count": 0, "waived_fen": 0}
    claims = {"opened_count": 0, "opened_fen": 0, "settled_count": 0, "settled_fen": 0}
    claim_reasons: Counter[str] = Counter()
    for env in envelopes:
        kind = env.get("type", "?")
        data = env.get("data") or {}
        by_type[kind] += 1
        if kind == "refund.issued":
            routes[data.get("route", "?")] += 1
        elif kind == "intercept.failed":
            failures[f"{data.get('channel', '?')}:{data.get('reason', '?')}"] += 1
        elif kind == "case.closed":
            closed[data.get("resolution", "?")] += 1
        elif kind == "fee.charged":
            key = "waived" if data.get("waived") else "charged"
            fees[f"{key}_count"] += 1
            fees[f"{key}_fen"] += int(data.get("fee_fen", 0))
        elif kind == "claim.opened":
            claims["opened_count"] += 1
            claims["opened_fen"] += int(data.get("amount_fen", 0))
            claim_reasons[data.get("reason", "?")] += 1
        elif kind == "claim.settled":
            claims["settled_count"] += 1
            claims["settled_fen"] += int(data.get("paid_fen", 0))
    claims["outstanding_fen"] = claims["opened_fen"] - claims["settled_fen"]
    return {
        "total": sum(by_type.values()),
        "by_type": dict(sorted(by_type.items())),
        "refund_issued_by_route": dict(sorted(routes.items())),
        "intercept_failed_by_reason": dict(sorted(failures.items())),
        "case_closed_by_resolution": dict(sorted(closed.items())),
        "fees": fees,
        "claims": {**claims, "by_reason": dict(sorted(claim_reasons.items()))},
    }


# -- the report -----------------------------------------------------------------------------


def build_report(
    measurements: Sequence[Measurement],
    envelopes: Sequence[Mapping[str, Any]],
    *,
    run: Mapping[str, Any] | None = None,
    inbound_counts: Mapping[str, int] | None = None,
    backlog: Sequence[tuple[float, int, float]] | None = None,
    ingress_answers: Sequence[Sequence[Any]] | None = None,
) -> dict[str, Any]:
    """The report as JSON-ready data. `run` describes the run (stream, seed, workers, broker);
    `inbound_counts` is what the database says came in (applied, duplicate, parked, kept aside);
    `backlog` is (seconds in, inputs published and not applied, age of the oldest s) over time;
    `ingress_answers`, when the ingress was probed, (seconds in, ms, HTTP status or None)."""
    if measurements:
        start = min(m.published_at for m in measurements)
        end = max(m.committed_at for m in measurements)
        duration = max(end - start, 1e-9)
    else:
        duration = 0.0
    report = {
        "report_version": REPORT_VERSION,
        "run": dict(run or {}),
        "events": len(measurements),
        "duration_s": round(duration, 3),
        "throughput_eps": round(len(measurements) / duration, 3) if duration else 0.0,
        "latency": latency_stats(m.latency_s for m in measurements),
        "storefront_latency": latency_stats(m.storefront_latency_s for m in measurements),
        "latency_along_the_run": latency_along_the_run(measurements),
        "backlog": {
            "max_inputs": max((n for _, n, _ in backlog or ()), default=0),
            "max_age_s": max((a for _, _, a in backlog or ()), default=0.0),
            "series": [list(sample) for sample in backlog or ()],
        },
        "inbound": dict(sorted((inbound_counts or {}).items())),
        "outcomes": outcome_summary(envelopes),
        "outcome_digest": outcome_digest(envelopes),
    }
    if ingress_answers is not None:
        report["ingress_probe"] = ingress_probe_stats(ingress_answers)
    return report


def compare_reports(current: Mapping[str, Any], earlier: Mapping[str, Any]) -> dict[str, Any]:
    """What changed since an earlier report: the digest above all, then counts and speed."""
    cur_types = current.get("outcomes", {}).get("by_type", {})
    old_types = earlier.get("outcomes", {}).get("by_type", {})
    type_diff = {t: cur_types.get(t, 0) - old_types.get(t, 0)
                 for t in sorted(set(cur_types) | set(old_types)) if cur_types.get(t, 0) != old_types.get(t, 0)}
    cur_routes = current.get("outcomes", {}).get("refund_issued_by_route", {})
    old_routes = earlier.get("outcomes", {}).get("refund_issued_by_route", {})
    route_diff = {r: cur_routes.get(r, 0) - old_routes.get(r, 0)
                  for r in sorted(set(cur_routes) | set(old_routes)) if cur_routes.get(r, 0) != old_routes.get(r, 0)}

    def ratio(key_path: tuple[str, ...]) -> float | None:
        a: Any = current
        b: Any = earlier
        for k in key_path:
            a = a.get(k) if isinstance(a, Mapping) else None
            b = b.get(k) if isinstance(b, Mapping) else None
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b == 0:
            return None
        return round(a / b, 3)

    return {
        "earlier_digest": earlier.get("outcome_digest"),
        "digest_match": current.get("outcome_digest") == earlier.get("outcome_digest"),
        "outcome_count_diff": type_diff,
        "route_count_diff": route_diff,
        "throughput_ratio": ratio(("throughput_eps",)),
        "p95_ratio": ratio(("latency", "p95_ms")),
        "p99_ratio": ratio(("latency", "p99_ms")),
    }


def render_markdown(report: Mapping[str, Any]) -> str:
    lat = report.get("latency", {})
    out = ["# Load test report", ""]
    run = report.get("run") or {}
    if run:
        out += ["| run | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in run.items()] + [""]
    out += [
        f"- events measured: **{report.get('events', 0)}** in {report.get('duration_s', 0)} s",
        f"- throughput: **{report.get('throughput_eps', 0)} events/s**",
        f"- outcome digest: `{report.get('outcome_digest', '')}`",
        "",
        "## Latency",
        "",
        "| | p50 | p95 | p99 | max | mean |",
        "|---|---|---|---|---|---|",
        f"| message published → committed | {lat.get('p50_ms', '-')} ms | {lat.get('p95_ms', '-')} ms | {lat.get('p99_ms', '-')} ms "
        f"| {lat.get('max_ms', '-')} ms | {lat.get('mean_ms', '-')} ms |",
    ]
    shop = report.get("storefront_latency") or {}
    if shop:
        out.append(f"| input accepted by a relay → committed (what a storefront sees: the relay's fill time included) "
                   f"| {shop.get('p50_ms', '-')} ms | {shop.get('p95_ms', '-')} ms | {shop.get('p99_ms', '-')} ms "
                   f"| {shop.get('max_ms', '-')} ms | {shop.get('mean_ms', '-')} ms |")
    along = report.get("latency_along_the_run") or []
    if along:
        out += ["", "Along the run (its inputs in publishing order, in tenths; message published → committed):", "",
                "| inputs | published (s into the run) | p50 | p99 | max |", "|---|---|---|---|---|"]
        out += [f"| {a['inputs']} | {a['published_s'][0]}–{a['published_s'][1]} | {a['p50_ms']} ms | {a['p99_ms']} ms | {a['max_ms']} ms |"
                for a in along]
    backlog = report.get("backlog") or {}
    out += [
        "",
        f"- backlog (inputs published and not applied yet): at most **{backlog.get('max_inputs', 0)}**, "
        f"the oldest waiting **{backlog.get('max_age_s', 0)} s** at worst",
    ]
    probe = report.get("ingress_probe")
    if probe:
        out.append(ingress_probe_line(probe))
    out += [
        "",
        "![throughput](throughput.png)",
        "",
        "![latency](latency.png)",
        "",
        "![backlog](backlog.png)",
        "",
    ]
    if report.get("inbound"):
        out += ["## Inbound", "", "| recorded as | count |", "|---|---|"]
        out += [f"| {k} | {v} |" for k, v in report["inbound"].items()] + [""]
    outcomes = report.get("outcomes", {})
    for title, key in (("Outcomes by type", "by_type"), ("refund.issued by route", "refund_issued_by_route"),
                       ("intercept.failed by channel:reason", "intercept_failed_by_reason"),
                       ("case.closed by resolution", "case_closed_by_resolution")):
        rows = outcomes.get(key) or {}
        out += [f"## {title}", "", "| | count |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows.items()] + [""]
    fees, claims = outcomes.get("fees", {}), outcomes.get("claims", {})
    out += [
        "## Fees and claims (fen)",
        "",
        "| | count | fen |",
        "|---|---|---|",
        f"| fees charged | {fees.get('charged_count', 0)} | {fees.get('charged_fen', 0)} |",
        f"| fees waived (free quota) | {fees.get('waived_count', 0)} | {fees.get('waived_fen', 0)} |",
        f"| claims opened | {claims.get('opened_count', 0)} | {claims.get('opened_fen', 0)} |",
        f"| claims settled | {claims.get('settled_count', 0)} | {claims.get('settled_fen', 0)} |",
        f"| claims outstanding | | {claims.get('outstanding_fen', 0)} |",
        "",
    ]
    cmp_ = report.get("compare")
    if cmp_:
        verdict = "same outcomes" if cmp_.get("digest_match") else "**OUTCOMES DIFFER**"
        out += ["## Compared with an earlier report", "",
                f"- digest: {verdict} (earlier `{cmp_.get('earlier_digest')}`)",
                f"- throughput ratio (now / then): {cmp_.get('throughput_ratio')}",
                f"- p95 ratio: {cmp_.get('p95_ratio')}, p99 ratio: {cmp_.get('p99_ratio')}"]
        for title, key in (("outcome count differences", "outcome_count_diff"), ("route differences", "route_count_diff")):
            if cmp_.get(key):
                out.append(f"- {title}: " + ", ".join(f"{k} {v:+d}" for k, v in cmp_[key].items()))
        out.append("")
    return "\n".join(out)


def ingress_probe_line(probe: Mapping[str, Any]) -> str:
    """The report.md line of the ingress probe: its figures, its budget, kept or not."""
    verdict = "kept" if probe.get("within_budget") else "**NOT kept**"
    return (f"- ingress answer times along the replay (the probe's signed POST /events): {probe.get('requests', 0)} requests, "
            f"{probe.get('non_2xx', 0)} not 2xx, p50 {probe.get('p50_ms', '-')} ms, p99 {probe.get('p99_ms', '-')} ms, "
            f"max {probe.get('max_ms', '-')} ms; budget p99 <= {probe.get('budget_p99_ms', INGRESS_P99_BUDGET_MS):g} ms, "
            f"every answer 2xx: {verdict}")


# Fewer seconds than this and a per-second curve is a few dots that say nothing.
MIN_SERIES_S = 5.0
LABELLED_PERCENTILES = {50: "tab:green", 95: "tab:orange", 99: "tab:red"}


def _pyplot():
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def throughput_figure(measurements: Sequence[Measurement], bucket_s: float = 1.0, target_rate: float | None = None):
    """Commits per second along the run, with the rate the replay aimed at; a run too short
    for a curve says so instead of drawing one."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.set_title("Throughput")
    series = throughput_series(measurements, bucket_s)
    span = 0.0
    if measurements:
        span = max(m.committed_at for m in measurements) - min(m.published_at for m in measurements)
    if span < MIN_SERIES_S:
        overall = f", {len(measurements) / span:,.0f} events/s overall" if span > 0 else ""
        ax.text(0.5, 0.5, f"The run lasted {span:.1f} s: too short for a throughput curve.\n"
                          f"{len(measurements)} events committed{overall}.", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        ax.plot([t for t, _ in series], [c / bucket_s for _, c in series], linewidth=1, label="committed events/s")
        if target_rate:
            ax.axhline(target_rate, linestyle="--", color="tab:red", linewidth=1, label=f"target {target_rate:g} events/s")
        ax.set_xlabel("seconds since first publish")
        ax.set_ylabel("committed events / s")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def latency_figure(latencies_ms: Sequence[float]):
    """Histogram and CDF of latencies on a log axis (the body of the distribution and its tail
    both visible), the percentiles marked and labelled on both."""
    plt = _pyplot()
    lat = sorted(latencies_ms)
    fig, (h, c) = plt.subplots(1, 2, figsize=(11, 3.8))
    h.set_title("Latency distribution")
    c.set_title("Latency CDF")
    h.set_ylabel("events")
    c.set_ylabel("fraction ≤ x")
    positive = [v for v in lat if v > 0]
    if not positive:
        for ax in (h, c):
            ax.text(0.5, 0.5, "no latency measured", ha="center", va="center", transform=ax.transAxes)
        fig.tight_layout()
        return fig
    low, high = positive[0], positive[-1]
    if high / low > 10:
        bins = [low * (high / low) ** (i / 60) for i in range(61)]
        for ax in (h, c):
            ax.set_xscale("log")
    else:
        bins = 60
    h.hist(positive, bins=bins)
    c.plot(positive, [(i + 1) / len(positive) for i in range(len(positive))], linewidth=1)
    for n, (q, colour) in enumerate(LABELLED_PERCENTILES.items()):
        value = percentile(lat, q)
        label = f"p{q} {value:,.0f} ms" if value >= 10 else f"p{q} {value:.2g} ms"
        for ax in (h, c):
            ax.axvline(value, linestyle="--", linewidth=1, color=colour)
            # Beside its line, on whichever side has room, one row per percentile, over what is behind.
            right_half = _axis_fraction(ax, value) > 0.6
            ax.annotate(label, (value, 1), xycoords=("data", "axes fraction"), xytext=(-4 if right_half else 4, -4 - 13 * n),
                        textcoords="offset points", va="top", ha="right" if right_half else "left", fontsize=8, color=colour,
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    for ax in (h, c):
        ax.set_xlabel("latency (ms, publish → commit)" + (", log scale" if ax.get_xscale() == "log" else ""))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _axis_fraction(ax, x: float) -> float:
    """Where x falls across the axis, 0 (left) to 1 (right), on a linear or a log scale."""
    lo, hi = ax.get_xlim()
    if ax.get_xscale() == "log":
        lo, hi, x = math.log(lo), math.log(hi), math.log(x)
    return (x - lo) / (hi - lo) if hi > lo else 0.5


def _plots(measurements: Sequence[Measurement], out_dir: Path, bucket_s: float, target_rate: float | None) -> list[Path]:
    plt = _pyplot()
    paths = []
    for name, fig in (("throughput.png", throughput_figure(measurements, bucket_s, target_rate)),
                      ("latency.png", latency_figure([m.latency_s * 1000 for m in measurements]))):
        paths.append(out_dir / name)
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths


def write_report(
    out_dir: Path | str,
    measurements: Sequence[Measurement],
    envelopes: Sequence[Mapping[str, Any]],
    *,
    run: Mapping[str, Any] | None = None,
    inbound_counts: Mapping[str, int] | None = None,
    compare_with: Path | str | None = None,
    bucket_s: float = 1.0,
    backlog: Sequence[tuple[float, int, float]] | None = None,
    ingress_answers: Sequence[Sequence[Any]] | None = None,
) -> dict[str, Any]:
    """Build the report, compare it with an earlier `report.json` if given, write every file.

    Returns the report (with a `compare` section when compared)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(measurements, envelopes, run=run, inbound_counts=inbound_counts, backlog=backlog,
                          ingress_answers=ingress_answers)
    if compare_with is not None:
        earlier = json.loads(Path(compare_with).read_text(encoding="utf-8"))
        report["compare"] = compare_reports(report, earlier)
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "report.md").write_text(render_markdown(report), encoding="utf-8")
    rate = (run or {}).get("rate")
    _plots(measurements, out, bucket_s, rate if isinstance(rate, (int, float)) else None)
    plt = _pyplot()
    probe = report.get("ingress_probe")
    fig = backlog_figure(report["backlog"]["series"], probe["series"] if probe else None,
                         probe["budget_p99_ms"] if probe else None)
    fig.savefig(out / "backlog.png", dpi=100)
    plt.close(fig)
    return report


def backlog_figure(series: Sequence[Sequence[float]], ingress_series: Sequence[Sequence[float]] | None = None,
                   ingress_budget_ms: float | None = None):
    """Inputs published and not applied over the run, with the oldest one's age: a backlog
    that builds while inputs come faster than the workers apply them, and drains after. With
    the ingress probed, its answer times below, on the same time axis: whether the ingress kept
    answering while the backlog stood."""
    plt = _pyplot()
    if ingress_series is None:
        fig, ax = plt.subplots(figsize=(8, 3.5))
    else:
        fig, (ax, probe_ax) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, height_ratios=(3, 2))
    ax.set_title("backlog: published, not applied yet")
    ax.set_ylabel("inputs")
    if ingress_series is not None:
        _ingress_panel(probe_ax, ingress_series, ingress_budget_ms)
        probe_ax.set_xlabel("seconds into the run")
    else:
        ax.set_xlabel("seconds into the run")
    if len(series) < 2:
        ax.text(0.5, 0.5, "no backlog samples (a run too short to watch)", ha="center", va="center", transform=ax.transAxes)
        fig.tight_layout()
        return fig
    xs = [s[0] for s in series]
    ax.plot(xs, [s[1] for s in series], color="tab:blue", label="inputs waiting")
    age = ax.twinx()
    age.plot(xs, [s[2] for s in series], color="tab:red", linestyle="--", label="oldest waiting (s)")
    age.set_ylabel("oldest waiting (s)", color="tab:red")
    lines = ax.get_lines() + age.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="upper right")
    ax.set_ylim(bottom=0)
    age.set_ylim(bottom=0)
    fig.tight_layout()
    return fig


def _ingress_panel(ax, series: Sequence[Sequence[float]], budget_ms: float | None) -> None:
    ax.set_title("ingress: POST /events answer time (the probe)")
    ax.set_ylabel("answer (ms)")
    if not series:
        ax.text(0.5, 0.5, "no probe answers", ha="center", va="center", transform=ax.transAxes)
        return
    ax.plot([s[0] for s in series], [s[1] for s in series], color="tab:purple", marker=".", markersize=3,
            linewidth=0.8, label="answer time")
    if budget_ms is not None:
        ax.axhline(budget_ms, linestyle="--", color="tab:red", linewidth=1, label=f"budget p99 {budget_ms:g} ms")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
