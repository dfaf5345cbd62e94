"""`intercept chaos`: a generated stream run twice through the production processes, once clean
and once under a seeded schedule of faults, then compared (docs/reliability.md).

- servers: the run's own broker server, PostgreSQL database and `intercept` processes;
- relays: the ingress fed over HTTP in signed batches, sent again until answered;
- faults: the schedule and the injector (kills, restarts, dropped connections, simulator faults);
- orchestration: one run, from start to settled, and what it left;
- verdict: the two runs compared and checked.
"""

from __future__ import annotations

import math
import time
from typing import Callable

from loadtest.generate import generate_stream

# Events per generated case, measured on the generator's defaults (for --events N).
EVENTS_PER_CASE = 8.8
# Ticks every two hours of stream time: each is a barrier for the relays (loadtest.chaos.relays).
TICK_EVERY_MINUTES = 120.0


def chaos_stream(events: int, seed: int) -> list[dict]:
    """A generated stream of at least `events` events (whole cases, and its final tick)."""
    cases = max(1, math.ceil(events / EVENTS_PER_CASE))
    while True:
        stream = list(generate_stream(cases, seed, tick_every_minutes=TICK_EVERY_MINUTES, id_prefix=f"chaos{seed}"))
        if len(stream) >= events:
            return stream
        cases = math.ceil(cases * max(1.02, events / len(stream)))


def run_chaos(events: int, seed: int, broker: str, admin_dsn: str, *, workers: int = 2, relays: int = 3,
              settle_timeout: float = 900.0, keep: bool = False, say: Callable[[str], None] = print):
    from loadtest.chaos.orchestration import run_once  # noqa: PLC0415
    from loadtest.chaos.verdict import judge  # noqa: PLC0415

    started = time.monotonic()
    stream = chaos_stream(events, seed)
    say(f"stream: {len(stream)} events (seed {seed})")
    common = dict(broker=broker, admin_dsn=admin_dsn, seed=seed, workers=workers, relays=relays,
                  settle_timeout=settle_timeout, keep=keep, say=say)
    clean = run_once(stream, label="clean", faulted=False, **common)
    say(f"clean: settled in {clean.wall_s:.0f} s")
    faulted = run_once(stream, label="faulted", faulted=True, **common)
    say(f"faulted: settled in {faulted.wall_s:.0f} s, faults {faulted.faults}")
    return judge(len(stream), clean, faulted, round(time.monotonic() - started, 1))
