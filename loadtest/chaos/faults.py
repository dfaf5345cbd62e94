"""The faults of a chaos run: a seeded schedule, and the injector that carries it out while the
relays post.

Each fault is due when the relays have had a given share of the stream answered (progress, not
wall time: a slow machine meets the same faults at the same places of the stream). The kinds:

- worker_sigkill: SIGKILL of a worker's pool process (its message goes back to the queue) or of
  the worker itself (restarted; its message is stranded until the broker gives it back, or the
  sweep re-drives the work from the database);
- worker_sigkill_refund_in_flight: aimed with the crash point `refund_call` (workers.crashpoints):
  the refund provider is slowed (latency), the point is armed, the first worker about to call
  claims it and names itself, and is killed while its request is in flight;
- worker_sigkill_refund_answered: aimed at `refund_answered`: paid, not yet recorded;
- worker_sigkill_after_commit: aimed at `after_commit`: committed, not yet acknowledged;
- worker_sigterm: warm shutdown while it works, then a new worker;
- broker_restart: the run's own broker server stopped and started again (same data directory);
- broker_flush: every message in the broker deleted (Redis FLUSHALL; RabbitMQ purge_queue);
- db_terminate: pg_terminate_backend on every session of the run's database;
- ingress_restart: SIGKILL of `intercept serve` while the relays post, started again;
- sim_5xx_burst, sim_429, sim_timeout_after_apply: the simulators' fault switches, on for a few
  seconds (both the carrier API and the refund provider);
- stray_callbacks: the carrier calls back for waybills nobody asked to intercept;
- duplicate_callbacks, out_of_order_callbacks: how the carrier's held answers are released at the end.
"""

from __future__ import annotations

import glob
import logging
import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger("intercept.chaos")

# How many of each kind a run injects (the acceptance bar of issue 9: >= 5 SIGKILLs, >= 3
# dropped connections, a broker restart, an ingress restart, every simulator fault).
PLAN = {
    "worker_sigkill": 3,
    "worker_sigkill_refund_in_flight": 1,
    "worker_sigkill_refund_answered": 1,
    "worker_sigkill_after_commit": 1,
    "worker_sigterm": 1,
    "broker_restart": 1,
    "broker_flush": 1,
    "db_terminate": 3,
    "ingress_restart": 1,
    "sim_5xx_burst": 1,
    "sim_429": 1,
    "sim_timeout_after_apply": 1,
    "stray_callbacks": 1,
}
# Switched on before the held carrier answers are released, after the stream.
AT_RELEASE = ("duplicate_callbacks", "out_of_order_callbacks")
SWITCH_S = 3.0  # how long a simulator fault stays on
AIM_WAIT_S = 240.0  # how long an aimed kill waits for a worker to reach its point (a backlog can hold the calls back)


@dataclass(order=True)
class Fault:
    at: float  # share of the stream answered when it is due
    kind: str = field(compare=False)


def schedule(seed: int, plan: dict[str, int] | None = None) -> list[Fault]:
    """The kinds in a seeded order, spread evenly over 5%-90% of the stream with a little jitter
    (so two faults never fall on the same batch)."""
    rng = random.Random(seed)
    kinds = [kind for kind, n in (plan or PLAN).items() for _ in range(n)]
    rng.shuffle(kinds)
    step = 0.85 / len(kinds)
    return [Fault(round(0.05 + step * (i + rng.uniform(0.2, 0.8)), 4), kind) for i, kind in enumerate(kinds)]


class Injector:  # on a loadtest.chaos.orchestration.Cluster
    """Runs the schedule (`run`); `done` counts what was injected, by kind."""

    def __init__(self, cluster: Any, faults: list[Fault], total: int, seed: int):
        self.cluster = cluster
        self.pending = list(faults)
        self.total = total
        self.rng = random.Random(seed + 1)
        self.done: Counter = Counter()
        self.missed: Counter = Counter()
        self.notes: list[str] = []
        self.progress = 0
        self._wake = threading.Event()
        self._lock = threading.Lock()

    def advance(self, answered: int) -> None:
        """Called by the relays as they are answered; holds them while a fault due by now has
        not started (a fault in progress does not hold them: the relays post through it), so
        the faults fall where the schedule puts them even when the relays outrun the injector."""
        self.progress = max(self.progress, answered)
        self._wake.set()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with self._lock:
                due = bool(self.pending) and self.pending[0].at * self.total <= answered
            if not due:
                return
            time.sleep(0.05)

    def run(self, relays_done) -> None:
        """Inject the schedule as the relays progress, in the calling thread: the main one, since
        what it restarts dies with the thread that started it (PR_SET_PDEATHSIG, servers.py).
        Faults still due when the relays are done are injected then."""
        while self.pending:
            if relays_done():
                self.progress = self.total
            if self.pending[0].at * self.total <= self.progress:
                with self._lock:
                    fault = self.pending.pop(0)
                try:
                    self.inject(fault.kind)
                except Exception as exc:  # noqa: BLE001 - a fault that failed is reported, the run goes on
                    log.exception("fault %s could not be injected", fault.kind)
                    self.missed[fault.kind] += 1
                    self.notes.append(f"{fault.kind}: {type(exc).__name__}: {exc}")
                continue
            self._wake.wait(0.2)
            self._wake.clear()

    # ---- the kinds ----------------------------------------------------------------------------

    def inject(self, kind: str) -> None:
        c = self.cluster
        log.warning("fault: %s (at %d of %d inputs answered)", kind, self.progress, self.total)
        if kind == "worker_sigkill":
            worker = self.rng.choice(c.workers)
            children = c.children(worker)
            if children and self.rng.random() < 0.6:
                os.kill(self.rng.choice(children), signal.SIGKILL)  # the pool restarts its process
            else:
                worker.kill(signal.SIGKILL)
                worker.wait(10)
                worker.start()
        elif kind.startswith("worker_sigkill_"):
            self._aimed_kill({"worker_sigkill_refund_in_flight": "refund_call",
                              "worker_sigkill_refund_answered": "refund_answered",
                              "worker_sigkill_after_commit": "after_commit"}[kind], kind)
            return
        elif kind == "worker_sigterm":
            worker = self.rng.choice(c.workers)
            worker.kill(signal.SIGTERM)
            if worker.wait(60) is None:
                self.notes.append("worker_sigterm: warm shutdown took over 60 s; killed")
                worker.stop(timeout=1)
            worker.start()
        elif kind == "broker_restart":
            c.broker.restart()
        elif kind == "broker_flush":
            self.notes.append(f"broker_flush: {c.broker.flush()}")
        elif kind == "db_terminate":
            self.notes.append(f"db_terminate: {c.database.terminate_backends()} sessions")
        elif kind == "ingress_restart":
            c.ingress.kill(signal.SIGKILL)
            c.ingress.wait(10)
            time.sleep(1.0)
            c.start_ingress()
        elif kind == "sim_5xx_burst":
            self._switch({"error_5xx_rate": 0.6})
        elif kind == "sim_429":
            self._switch({"rate_limit_first": 1, "retry_after_s": 1})
        elif kind == "sim_timeout_after_apply":
            # Longer than the clients' read time-out (10 s): applied, and the client never hears.
            self._switch({"timeout_after_apply_first": 1, "hold_s": 11})
        elif kind == "stray_callbacks":
            c.sim_faults("carrier", {"stray_callbacks": 3})
            c.sim_faults("carrier", {"stray_callbacks": 0})
        else:
            raise ValueError(f"unknown fault {kind}")
        self.done[kind] += 1

    def _switch(self, faults: dict) -> None:
        for api in ("carrier", "refund"):
            self.cluster.sim_faults(api, faults)
        time.sleep(SWITCH_S)
        off = {name: 0 for name in faults if name not in ("retry_after_s", "hold_s")}
        for api in ("carrier", "refund"):
            self.cluster.sim_faults(api, off)

    def _aimed_kill(self, point: str, kind: str) -> None:
        """Arm `point`; the first worker process to reach it names itself; SIGKILL it there."""
        c = self.cluster
        if point == "refund_call":
            c.sim_faults("refund", {"latency_ms": 3000})  # the request stays in flight 3 s
        armed = c.crash_dir / f"{point}.armed"
        armed.touch()
        deadline = time.monotonic() + AIM_WAIT_S
        hit = []
        while time.monotonic() < deadline and not hit:
            hit = glob.glob(str(c.crash_dir / f"{point}.hit.*"))
            time.sleep(0.05)
        try:
            if not hit:
                armed.unlink(missing_ok=True)
                self.missed[kind] += 1
                self.notes.append(f"{kind}: no worker reached {point} within {AIM_WAIT_S:.0f} s")
                return
            pid = int(hit[0].rsplit(".", 1)[1])
            if point == "refund_call":
                time.sleep(1.0)  # the request is on its way, the provider holding it
            os.kill(pid, signal.SIGKILL)
            os.rename(hit[0], hit[0].replace(".hit.", ".killed."))
            self.done[kind] += 1
            for worker in c.workers:  # a killed pool process is replaced by its worker; a killed worker by us
                if worker.proc is not None and worker.proc.pid == pid:
                    worker.wait(10)
                    worker.start()
        finally:
            if point == "refund_call":
                c.sim_faults("refund", {"latency_ms": 0})


def release_callbacks(cluster: Any, faulted: bool) -> None:
    """The carrier's held answers go out now, duplicated and out of order in the faulted run."""
    if faulted:
        cluster.sim_faults("carrier", {name: True for name in AT_RELEASE})
    cluster.sim_faults("carrier", {"hold_callbacks": False})


def sim_post(url: str, body: dict) -> dict:
    response = httpx.post(url, json=body, timeout=10)
    response.raise_for_status()
    return response.json()
