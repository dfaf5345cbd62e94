"""What the contracts check of `records_attempts` (domain/ports.py), and a recorder to check it with."""

from __future__ import annotations

import threading


class FakeAttemptRecorder:
    """An AttemptRecorder in memory: the calls SqlAttemptRecorder would have made rows of."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, kind: str, key: str, status: str, duration_ms: float, error: str | None) -> None:
        with self._lock:
            self.calls.append((kind, key, status))

    def count(self, kind: str, key: str) -> int:
        with self._lock:
            return sum(1 for k, rec_key, _ in self.calls if (k, rec_key) == (kind, key))


def assert_records_attempts_truthfully(records_attempts: bool, recorded: int | None, sent: int | None) -> None:
    """`recorded`: the attempts the implementation itself recorded (None: it has nowhere to);
    `sent`: the attempts that reached the other side."""
    if records_attempts:
        assert recorded == sent >= 1
    else:
        # Its caller records each call; a record here as well would count the call twice.
        assert not recorded
