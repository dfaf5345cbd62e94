"""`intercept replay --probe-ingress`: how long `intercept serve` takes to answer while the
replay overloads the workers (issue 11, backpressure).

The probe starts a real `intercept serve` on a free loopback port, on the replay's own
namespace (its database URL, its broker), with a secret generated for the run, and posts a
small signed batch to POST /events every 0.2 s for the whole replay, recording each answer's
status and wall time. The ingress only records (the inbox, under the sequencer's lock) and
nudges a worker, so its answers should stay within their budget however far behind the workers
are: docs/ingress-limits.md, "Answer time under load".

What it posts must not change the replay's outcomes (its --compare digest): each item is a
`merchant.configured` of a merchant of the probe's own, with a fresh event id, so it goes the
whole way a real input goes (recorded, sequenced, applied) yet emits nothing (domain/decide.py
`apply_event`: a configuration changes the merchant's settings, no outbound event), and the
merchant is in no order of the stream. Not a duplicate: those are answered before the lock.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx

from adapters.webhooks.signing import sign_headers
# The chaos harness starts its `intercept serve` the same way.
from loadtest.chaos.servers import _die_with_parent, free_port, wait_port
from workers.processes import worker_env
from workers.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PROBE_INTERVAL_S = 0.2
PROBE_EVENTS_PER_POST = 5
# Far past any budget: an answer this late counts as none (non-2xx), and the probe goes on.
PROBE_TIMEOUT_S = 30.0
SERVE_START_TIMEOUT_S = 30.0


@dataclass
class Answer:
    at_s: float  # seconds into the replay when the request was sent
    ms: float  # wall time to the answer (or to giving up)
    status: int | None  # None: no answer (connection refused, reset, timed out)


@dataclass
class IngressProbe:
    settings: Settings
    log_path: Path
    interval_s: float = PROBE_INTERVAL_S
    events_per_post: int = PROBE_EVENTS_PER_POST
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/events"
        self.secret = secrets.token_hex(24)
        tag = uuid.uuid4().hex[:10]
        # Its own merchant and ids: configuring it touches no merchant of the stream.
        self.merchant_id = f"ingress-probe-{tag}"
        self._id_prefix = f"ingress-probe-{tag}-"
        self._sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen | None = None

    # -- the ingress ---------------------------------------------------------------------------

    def start_ingress(self) -> None:
        """`intercept serve` on the replay's namespace; returns once it listens."""
        env = worker_env(self.settings) | {"INTERCEPT_WEBHOOK_SECRETS": self.secret}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen([sys.executable, "-m", "workers", "serve", "--port", str(self.port)],
                                          cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          preexec_fn=_die_with_parent)
        try:
            wait_port(self.port, SERVE_START_TIMEOUT_S, f"intercept serve (log: {self.log_path})", self._proc)
            self._warm_up()
        except RuntimeError:
            self.stop()
            raise

    def _warm_up(self) -> None:
        """One batch before the replay's clock starts, not counted: a deployed ingress has
        answered before (its first answer opens the pool and compiles the statements, ~0.3 s
        here), and a refusal (a secret not taken, say) stops the replay before it starts."""
        body = self._batch()
        headers = {"content-type": "application/json", **sign_headers(self.secret, body, time.time())}
        try:
            response = httpx.post(self.url, content=body, headers=headers, timeout=PROBE_TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise RuntimeError(f"intercept serve did not answer the probe's first batch: {exc} (log: {self.log_path})") from None
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"intercept serve answered the probe's first batch {response.status_code}: "
                               f"{response.text[:300]} (log: {self.log_path})")

    # -- the probing -----------------------------------------------------------------------------

    def start(self, started: float) -> None:
        """Post every interval from a thread; `started` is the replay's time zero (time.time()),
        so the answers share the backlog's time axis."""
        self._thread = threading.Thread(target=self._run, args=(started,), name="ingress-probe", daemon=True)
        self._thread.start()

    def _batch(self) -> bytes:
        now = datetime.now(timezone.utc).isoformat()
        events = []
        for _ in range(self.events_per_post):
            self._sent += 1
            events.append({"event_id": f"{self._id_prefix}{self._sent}", "type": "merchant.configured",
                           "occurred_at": now, "data": {"merchant_id": self.merchant_id}})
        return json.dumps(events).encode()

    def _run(self, started: float) -> None:
        with httpx.Client(timeout=httpx.Timeout(PROBE_TIMEOUT_S, connect=2.0)) as client:
            due = time.monotonic()
            while True:  # at least one post, however short the replay
                body = self._batch()
                headers = {"content-type": "application/json", **sign_headers(self.secret, body, time.time())}
                sent_at = time.time()
                t0 = time.perf_counter()
                try:
                    status: int | None = client.post(self.url, content=body, headers=headers).status_code
                except httpx.HTTPError:
                    status = None
                self.answers.append(Answer(round(sent_at - started, 3), round((time.perf_counter() - t0) * 1000, 3), status))
                # On a schedule, not a pause after each answer: a slow answer is followed at once
                # by the next post (one in flight at a time), so the rate is kept where it can be.
                due += self.interval_s
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    break

    def stop(self) -> None:
        """Finish the post in flight, then stop the ingress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=PROBE_TIMEOUT_S + 5)
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def answer_records(self) -> list[tuple[float, float, int | None]]:
        return [(a.at_s, a.ms, a.status) for a in self.answers]


def probe_log_path() -> Path:
    return Path(os.environ.get("INTERCEPT_HOME", "var")).resolve() / "replay-ingress.log"

