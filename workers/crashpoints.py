"""Test-only crash points: where a drill (`intercept chaos`) aims a SIGKILL at a worker.

Off unless INTERCEPT_CRASHPOINT_DIR names a directory. The drill arms a point by creating
`<dir>/<point>.armed`; the first worker process to reach that point claims it by renaming the
file to `<point>.hit.<pid>` (a rename is atomic: one winner), and, at points that pause, waits
there up to PAUSE_S for the drill's SIGKILL, then goes on as if nothing happened (a drill that
missed must not wedge the run). The points:

- refund_call: a refund's provider call is about to go out. No pause: the drill has slowed the
  provider, so the kill lands while the request is in flight.
- refund_answered: the provider's answer is in hand, not yet committed.
- after_commit: a message's work is committed and its task is about to return, before the ack.
"""

from __future__ import annotations

import os
import time

POINTS = ("refund_call", "refund_answered", "after_commit")
PAUSING = frozenset({"refund_answered", "after_commit"})
PAUSE_S = 20.0
DIR_ENV = "INTERCEPT_CRASHPOINT_DIR"


def enabled() -> bool:
    return bool(os.environ.get(DIR_ENV))


def reached(point: str) -> bool:
    """Claim `point` if armed; True when this process claimed it (and paused, where it pauses)."""
    folder = os.environ.get(DIR_ENV)
    if not folder:
        return False
    armed = os.path.join(folder, f"{point}.armed")
    if not os.path.exists(armed):
        return False
    try:
        os.rename(armed, os.path.join(folder, f"{point}.hit.{os.getpid()}"))
    except OSError:  # another process claimed it first
        return False
    if point in PAUSING:
        time.sleep(PAUSE_S)
    return True
