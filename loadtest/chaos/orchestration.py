"""One chaos run: the processes started, the stream relayed, the faults injected, the system
settled, and what it did collected for the verdict.

Each run gets its own PostgreSQL database and its own broker server; the processes are the
production ones (`intercept serve`, `intercept worker` x N, `intercept beat`, `intercept sim`)
with the HTTP carrier and refund clients. The clock is the stream's (docs/domain.md §9), so
deadlines move with the stream's ticks and the two runs can be compared; the carrier's answers
that decide an outcome are those recorded in the stream (SPEC §7: nothing outside the stream
decides an outcome of a run that is compared), and the carrier simulator's own callbacks are
held and released once the stream is in, when they can only be kept aside or duplicates.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx
import sqlalchemy as sa

from adapters.db import schema as t
from adapters.db.engine import make_engine, migrate
from adapters.db.progress import progress
from loadtest.chaos.faults import Injector, release_callbacks, schedule, sim_post
from loadtest.chaos.relays import RelayLedger, Relays
from loadtest.chaos.servers import Database, Process, broker_server, children_of, free_port, wait_port

log = logging.getLogger("intercept.chaos")

SECRET = "chaos-relay-secret"
SOURCE = "http:events"


@dataclass
class Collected:
    """What one run left: the outcomes, the simulators' effects, the inbox, what relays were told."""

    label: str
    outbound: list[dict[str, Any]]
    refund_effects: dict[str, int]
    refund_requests: dict[str, int]  # POSTs per key, faulted and repeated ones included
    carrier_effects: dict[str, int]
    carrier_requests: dict[str, dict[str, Any]]  # key -> {carrier, tracking_no}
    inbox: dict[str, list[str]]  # event id -> the states of its rows
    inbox_states: dict[str, int]
    intercept_keys: set[str]
    ledger: RelayLedger
    faults: dict[str, int] = field(default_factory=dict)
    missed: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sweeps: dict[str, int] = field(default_factory=dict)
    settled: bool = True
    wall_s: float = 0.0
    callbacks: dict[str, int] = field(default_factory=dict)  # the carrier simulator's, sent and failed


class Cluster:
    """The servers and processes of one run."""

    def __init__(self, home: Path, broker_kind: str, admin_dsn: str, workers: int, seed: int):
        self.home = home
        self.logs = home / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.crash_dir = home / "crashpoints"
        self.crash_dir.mkdir(exist_ok=True)
        self.broker = broker_server(broker_kind, home)
        self.database = Database(admin_dsn)
        self.sim_port, self.ingress_port = free_port(), free_port()
        self.seed = seed
        self.n_workers = workers
        self.workers: list[Process] = []
        self.ingress: Process | None = None
        self.beat: Process | None = None
        self.sim: Process | None = None

    @property
    def ingress_url(self) -> str:
        return f"http://127.0.0.1:{self.ingress_port}"

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    def env(self) -> dict[str, str]:
        return {
            "INTERCEPT_HOME": str(self.home),
            "INTERCEPT_DATABASE_URL": self.database.url,
            "INTERCEPT_BROKER_URL": self.broker.url,
            "INTERCEPT_CLOCK": "stream",
            "INTERCEPT_WEBHOOK_SECRETS": SECRET,
            "INTERCEPT_CARRIER_ADAPTER": "http",
            "INTERCEPT_CARRIER_URL": f"{self.sim_url}/carrier",
            "INTERCEPT_CARRIER_CALLBACK_URL": f"{self.ingress_url}/events",
            # The carriers' token buckets live in Redis; the run measures faults, not quotas.
            "INTERCEPT_CARRIER_RATE_PER_S": "0",
            "INTERCEPT_REFUND_GATEWAY": "http",
            "INTERCEPT_REFUND_URL": f"{self.sim_url}/refund",
            "INTERCEPT_SWEEP_SECONDS": "1",
            "INTERCEPT_REDRIVE_AFTER_S": "3",
            # The lease derived from the HTTP clients' bounds (about 12 min) would keep a killed
            # worker's refunds from the sweep past the run's settle wait; the simulator's calls
            # take seconds (Retry-After 1 s, answers held 2 s), so 30 s (renewed every 15 s)
            # still covers each, and a kill's refunds are re-driven within the run.
            "INTERCEPT_ACTION_LEASE_S": "30",
            # On SIGTERM (the worker_sigterm fault, and each worker's stop at the end of a run) Celery
            # waits the whole soft-shutdown time whenever a task is in hand, however soon it ends: the
            # default 20 s cost each faulted run about 20 s idle. A run's messages are relay batches of a
            # few events, done well within 5 s; a task still running then is handed back, as in production.
            "INTERCEPT_SHUTDOWN_GRACE_S": "5",
            "INTERCEPT_CRASHPOINT_DIR": str(self.crash_dir),
            "INTERCEPT_TASK_EVENTS": "0",
        }

    def start(self) -> None:
        self.broker.start()
        engine = make_engine(self.database.url)
        migrate(engine)  # as an operator does before starting the processes
        engine.dispose()
        env = self.env()
        self.sim = Process("sim", ("sim", "--port", str(self.sim_port), "--seed", str(self.seed),
                                   "--callback-url", f"{self.ingress_url}/events"),
                           {**env, "INTERCEPT_SIM_HOLD_CALLBACKS": "1"}, self.logs / "sim.log")
        self.sim.start()
        self.start_ingress()
        wait_port(self.sim_port, 30, "intercept sim")
        for i in range(self.n_workers):
            worker = Process(f"worker-{i}", ("worker", "-P", "prefork", "-c", "1", "-n", f"chaos{i}-{self.ingress_port}@%h",
                                             "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "WARNING"),
                             env, self.logs / f"worker-{i}.log")
            worker.start()
            self.workers.append(worker)
        self.beat = Process("beat", ("beat", "-s", str(self.home / "beat-schedule"), "-l", "WARNING"), env, self.logs / "beat.log")
        self.beat.start()

    def start_ingress(self) -> None:
        if self.ingress is None:
            self.ingress = Process("ingress", ("serve", "--port", str(self.ingress_port)), self.env(), self.logs / "ingress.log")
        for attempt in range(5):  # it checks the database and broker before serving: they may be down this moment
            self.ingress.start()
            try:
                wait_port(self.ingress_port, 30, "intercept serve")
                return
            except RuntimeError:
                self.ingress.stop(timeout=2)
                time.sleep(1 + attempt)
        raise RuntimeError("intercept serve did not start (see its log)")

    def children(self, worker: Process) -> list[int]:
        return children_of(worker.pid) if worker.pid else []

    def sim_faults(self, api: str, faults: dict) -> dict:
        return sim_post(f"{self.sim_url}/{api}/_sim/faults", faults)

    def sim_observed(self, api: str) -> dict:
        return httpx.get(f"{self.sim_url}/{api}/_sim/effects", timeout=10).json()

    def stop(self) -> None:
        for p in (self.beat, *self.workers, self.ingress, self.sim):
            if p is not None:
                p.stop(timeout=20)
        self.broker.close()

    def drop(self) -> None:
        self.database.drop()


def _settled(engine, cluster: Cluster) -> bool:
    p = progress(engine, SOURCE)
    if p.waiting_in_order or p.unapplied or p.ticks_pending or p.unrelayed or p.actions_in_flight:
        return False
    carrier = cluster.sim_observed("carrier")
    return carrier.get("callbacks_held", 0) == 0 and carrier.get("callbacks_pending", 0) == 0


def wait_settled(engine, cluster: Cluster, timeout: float, quiet_s: float = 6.0) -> bool:
    """Settled and staying so for `quiet_s` (a sweep or a late callback may still move it)."""
    deadline = time.monotonic() + timeout
    since = None
    while time.monotonic() < deadline:
        try:
            ok = _settled(engine, cluster)
        except Exception as exc:  # noqa: BLE001 - the database or the simulator may be mid-fault
            log.info("not settled yet: %s", exc)
            ok = False
        if ok:
            since = since or time.monotonic()
            if time.monotonic() - since >= quiet_s:
                return True
        else:
            since = None
        time.sleep(0.5)
    return False


def collect(engine, cluster: Cluster, label: str, ledger: RelayLedger) -> Collected:
    o, s = t.outbox, t.input_states
    with engine.connect() as conn:
        outbound = [env for (env,) in conn.execute(sa.select(o.c.envelope))]
        inbox: dict[str, list[str]] = {}
        states: dict[str, int] = {}
        for event_id, state in conn.execute(sa.select(s.c.event_id, s.c.state)):
            inbox.setdefault(event_id, []).append(state)
            states[state] = states.get(state, 0) + 1
        keys = {k for (k,) in conn.execute(sa.select(t.carrier_actions.c.idempotency_key))}
        sw = t.sweeps
        sweeps = {}
        for col in ("relayed", "actions", "inputs", "lines", "deadlines"):
            if col in sw.c:
                sweeps[col] = int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(sw.c[col]), 0))).scalar_one())
    refund = cluster.sim_observed("refund")
    carrier = cluster.sim_observed("carrier")
    return Collected(label, outbound, refund["effects"], refund.get("requests", {}), carrier["effects"], carrier.get("waybills", {}), inbox, states,
                     keys, ledger, sweeps=sweeps,
                     callbacks={k: carrier.get(f"callbacks_{k}", 0) for k in ("sent", "failed")})


def run_once(events: list[dict[str, Any]], *, label: str, broker: str, admin_dsn: str, seed: int, workers: int,
             relays: int, faulted: bool, settle_timeout: float, keep: bool,
             say: Callable[[str], None]) -> Collected:
    started = time.monotonic()
    home = Path(tempfile.mkdtemp(prefix=f"intercept-chaos-{label}-"))
    cluster = Cluster(home, broker, admin_dsn, workers, seed)
    say(f"{label}: database {cluster.database.name}, {broker} on port {cluster.broker.port}, logs in {home / 'logs'}")
    injector = None
    engine = None
    try:
        cluster.start()
        engine = make_engine(cluster.database.url)
        injector = Injector(cluster, schedule(seed), len(events), seed) if faulted else None
        sender = Relays(cluster.ingress_url, SECRET, relays, on_progress=injector.advance if injector else None)
        if injector:
            relaying = threading.Thread(target=sender.send, args=(events,), name="relays", daemon=True)
            relaying.start()
            injector.run(relays_done=lambda: not relaying.is_alive())
            relaying.join()
        else:
            sender.send(events)
        ledger = sender.ledger
        say(f"{label}: relays answered for {ledger.acked} event ids in {ledger.posts} posts ({ledger.resent} sent again)")
        release_callbacks(cluster, faulted)
        settled = wait_settled(engine, cluster, settle_timeout)
        if not settled:
            say(f"{label}: did not settle within {settle_timeout:.0f} s")
        result = collect(engine, cluster, label, ledger)
        result.settled = settled
        if injector:
            result.faults, result.missed, result.notes = dict(injector.done), dict(injector.missed), injector.notes
        result.wall_s = round(time.monotonic() - started, 1)
        return result
    finally:
        cluster.stop()
        if engine is not None:
            engine.dispose()
        if not keep:
            cluster.drop()
            shutil.rmtree(home, ignore_errors=True)
