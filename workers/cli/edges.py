"""Commands of the edges: `serve` (the ingress), `sim` (the HTTP simulators), `dlq` (dead letters)."""

from __future__ import annotations

import json
import sys

import click

from adapters.simulators.common import Faults
from workers.cli.common import engines as _engines, routing_engine as _engine, settings as _settings, uvicorn_log_config


def _acceptor():
    """The engine's Acceptor (records durably, then nudges the workers)."""
    from workers.app import app  # noqa: PLC0415 (builds the pipeline lazily)
    from workers.bootstrap import make_acceptor  # noqa: PLC0415

    return make_acceptor(app)


def readiness(engine, broker_url: str):
    """What /readyz reports: the database (every shard database: `engine` may be a list), and
    the broker when it is Redis or RabbitMQ."""
    databases = engine if isinstance(engine, list) else [engine]

    def check() -> dict[str, object]:
        import sqlalchemy as sa  # noqa: PLC0415

        from adapters.db.progress import backlog  # noqa: PLC0415

        out: dict[str, object] = {}
        try:
            waiting = []
            for db in databases:
                with db.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
                waiting.append(backlog(db))
            out["database"] = "ok"
            # The work waiting for the workers: shown, never a reason to refuse inputs (the
            # ingress only records them; the workers drain the backlog when they catch up).
            ages = [w["oldest_unapplied_s"] for w in waiting if w["oldest_unapplied_s"] is not None]
            out["backlog"] = {"ok": True, "unapplied_inputs": sum(w["unapplied_inputs"] for w in waiting),
                              "oldest_unapplied_s": max(ages) if ages else None}
        except Exception as exc:  # noqa: BLE001
            out["database"] = f"down: {type(exc).__name__}"
        if broker_url.startswith(("redis://", "rediss://")):
            try:
                import redis  # noqa: PLC0415

                client = redis.Redis.from_url(broker_url, socket_connect_timeout=1, socket_timeout=1)
                client.ping()
                client.close()
                out["broker"] = "ok"
            except Exception as exc:  # noqa: BLE001
                out["broker"] = f"down: {type(exc).__name__}"
        elif broker_url.startswith(("amqp://", "amqps://", "pyamqp://")):
            try:
                import kombu  # noqa: PLC0415

                with kombu.Connection(broker_url, connect_timeout=1) as conn:
                    conn.connect()
                out["broker"] = "ok"
            except Exception as exc:  # noqa: BLE001
                out["broker"] = f"down: {type(exc).__name__}"
        return out

    return check


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run the HTTP ingress: POST /events, /webhooks/{kuaidi100,aftership,douyin}, /healthz, /readyz, /metrics."""
    import uvicorn  # noqa: PLC0415

    from adapters.dead_letters import SqlDeadLetterStore  # noqa: PLC0415
    from adapters.ingress import IngressSettings, create_app  # noqa: PLC0415

    from workers.reachability import check  # noqa: PLC0415

    settings = _settings()
    # Up front: an ingress that answers 202 must have recorded the input and nudged a worker.
    check(settings)
    ingress_settings = IngressSettings.from_env()
    if not ingress_settings.webhook_secrets:
        click.echo("warning: INTERCEPT_WEBHOOK_SECRETS is empty: every POST /events will be refused", err=True)
    engine = _engine(settings)
    from adapters.metrics.exposition import build_registry, page  # noqa: PLC0415
    from adapters.metrics.stored_state import StoredStateCollector  # noqa: PLC0415

    metrics = page(build_registry(StoredStateCollector(settings.database_url, settings.broker_url, settings.clock, shard_urls=settings.shard_urls)))
    app = create_app(_acceptor(), SqlDeadLetterStore(engine), ingress_settings, readiness(_engines(settings), settings.broker_url),
                     metrics_page=metrics)
    from workers.logging_setup import configure  # noqa: PLC0415

    configure(settings.log_format, "INFO")  # the ingress's own loggers; uvicorn's are configured by uvicorn_log_config
    uvicorn.run(app, host=host, port=port, log_level="info", log_config=uvicorn_log_config())


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8081, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int, help="Outcomes are drawn per key from this seed.")
@click.option("--kind", type=click.Choice(["carrier", "refund", "both"]), default="both", show_default=True,
              help="both: carrier API under /carrier, refund provider under /refund.")
@click.option("--accept-rate", default=0.673, show_default=True, type=float, help="Carrier intercepts held (docs/domain.md §1).")
@click.option("--refuse-rate", default=0.0, show_default=True, type=float, help="Refunds refused for good.")
@click.option("--answer-delay", default=0.05, show_default=True, type=float, help="Seconds before the carrier answers.")
@click.option("--callback-url", default=None, help="Where carrier answers go (the ingress's /events); signed with the first INTERCEPT_WEBHOOK_SECRETS.")
@click.option("--latency-ms", type=int, default=None)
@click.option("--rate-limit-first", type=int, default=None, help="First N POSTs of each key get 429.")
@click.option("--retry-after", "retry_after_s", type=float, default=None)
@click.option("--error-5xx-first", type=int, default=None, help="Next N POSTs of each key get 503.")
@click.option("--error-5xx-rate", type=float, default=None, help="Share of other POSTs answered 503.")
@click.option("--timeout-after-apply-first", type=int, default=None, help="Next N POSTs of each key are applied, then answered too late.")
@click.option("--hold", "hold_s", type=float, default=None, help="How late (s).")
@click.option("--duplicate-callbacks", is_flag=True, default=None)
@click.option("--out-of-order-callbacks", is_flag=True, default=None)
def sim(host, port, seed, kind, accept_rate, refuse_rate, answer_delay, callback_url, **fault_flags) -> None:
    """Run the carrier-intercept and refund-provider simulators over HTTP (faults also via
    env INTERCEPT_SIM_<FAULT> and POST /_sim/faults; effects at GET /_sim/effects)."""
    import os  # noqa: PLC0415

    import uvicorn  # noqa: PLC0415

    from adapters.simulators.server import build_sim_app  # noqa: PLC0415

    faults = Faults.from_env().updated({k: v for k, v in fault_flags.items() if v is not None})
    secrets = [s.strip() for s in os.environ.get("INTERCEPT_WEBHOOK_SECRETS", "").split(",") if s.strip()]
    app = build_sim_app(
        kind, seed=seed, faults=faults, accept_rate=accept_rate, refuse_rate=refuse_rate, answer_delay_s=answer_delay,
        callback_url=callback_url, callback_secret=secrets[0] if secrets else None,
    )
    click.echo(f"simulator ({kind}) on http://{host}:{port} seed={seed} faults={json.dumps(faults.as_dict())}", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", log_config=uvicorn_log_config())


@click.group()
def dlq() -> None:
    """Dead letters: what the ingress refused, with the reason; replay once the cause is fixed."""


@dlq.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include those already retried.")
@click.option("--limit", default=50, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True)
def dlq_list(show_all: bool, limit: int, as_json: bool) -> None:
    """List dead letters (open ones by default)."""
    from adapters.dead_letters import SqlDeadLetterStore  # noqa: PLC0415

    letters = SqlDeadLetterStore(_engine(_settings())).list(status=None if show_all else "open", limit=limit)
    if as_json:
        for d in letters:
            click.echo(json.dumps({
                "id": d.id, "received_at": d.received_at.isoformat(), "endpoint": d.endpoint, "status": d.status,
                "reason": d.reason, "bytes": len(d.body),
            }, ensure_ascii=False))
        return
    if not letters:
        click.echo("no dead letters")
        return
    for d in letters:
        click.echo(f"{d.id:>6}  {d.received_at:%Y-%m-%d %H:%M:%S}  {d.status:<8} {d.endpoint:<20} {len(d.body):>7} B  {d.reason}")


@dlq.command("overflow")
@click.option("--limit", default=50, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True)
def dlq_overflow(limit: int, as_json: bool) -> None:
    """Unauthenticated refusals counted but not kept (beyond the cap per source and minute)."""
    from adapters.dead_letters import SqlDeadLetterStore  # noqa: PLC0415

    rows = SqlDeadLetterStore(_engine(_settings())).overflow(limit=limit)
    if as_json:
        for o in rows:
            click.echo(json.dumps({"endpoint": o.endpoint, "client": o.client, "minute": o.minute.isoformat(), "refused": o.refused,
                                   "kept": o.kept, "not_kept": o.not_kept, "bytes_not_kept": o.bytes_not_kept}, ensure_ascii=False))
        return
    if not rows:
        click.echo("no refusals beyond the cap")
        return
    for o in rows:
        click.echo(f"{o.minute:%Y-%m-%d %H:%M}  {o.endpoint:<20} {o.client:<40} refused {o.refused:>6}  kept {o.kept:>4}  "
                   f"not kept {o.not_kept:>6} ({o.bytes_not_kept} B)")


@dlq.command("retry")
@click.argument("letter_id", type=int)
@click.option("--by", default=None, help="Who retries, as recorded in dead_letter_retries (default: cli:<login name>).")
def dlq_retry(letter_id: int, by: str | None) -> None:
    """Replay dead letter ID through its endpoint's parsing with today's configuration."""
    from adapters.dead_letters import SqlDeadLetterStore  # noqa: PLC0415
    from adapters.ingress import replay_dead_letter  # noqa: PLC0415

    store = SqlDeadLetterStore(_engine(_settings()))
    if store.get(letter_id) is None:
        raise click.ClickException(f"no dead letter {letter_id}")
    outcome = replay_dead_letter(store, letter_id, _acceptor(), by=by or f"cli:{_login_name()}")
    counts: dict[str, int] = {}
    for r in outcome.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    click.echo(json.dumps({"id": outcome.id, "status": outcome.status, "reason": outcome.reason, "items": counts}, ensure_ascii=False))
    if outcome.status != "retried":
        sys.exit(1)


def _login_name() -> str:
    """Who runs this command; a container's user may have no name (no passwd entry): its uid."""
    import getpass  # noqa: PLC0415
    import os  # noqa: PLC0415

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


commands = [serve, sim, dlq]
