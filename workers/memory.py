"""Give freed heap memory back to the operating system after each task.

A worker's Python objects do not grow with the events it has seen (measured over a
million-event replay: allocated blocks and live objects flat), but its resident set crept
up: glibc keeps pages freed by one message's parsed batch (thousands of events, their JSON
strings, a megabyte message body) inside its heap for the next, and a heap fragmented by a
few live objects is never shrunk. `malloc_trim(0)` returns every free page of the heap, so
the resident set follows what the worker holds. It costs 0.1-0.5 ms a task (0.1-0.2 % of
the task, docs/performance.md); on a libc without it (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Callable


def heap_trimmer() -> Callable[[], None] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)
