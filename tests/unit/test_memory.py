"""A worker gives freed heap memory back after a task (workers.memory)."""

from __future__ import annotations

import sys

import pytest

from workers.memory import heap_trimmer


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmRSS:"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="resident set read from /proc and glibc's malloc_trim: Linux only")
def test_memory_freed_below_a_live_object_is_returned_to_the_system():
    trim = heap_trimmer()
    assert trim is not None, "glibc's malloc_trim was not found"
    # 100 MB of heap chunks (above pymalloc's small-object limit), then all freed but the last:
    # glibc cannot shrink a heap whose top is still in use, so the pages stay resident.
    chunks = [bytes(2000) for _ in range(50_000)]
    del chunks[:-1]
    before = _rss_mb()
    trim()
    assert before - _rss_mb() > 50, "freed pages stayed resident after the trim"
