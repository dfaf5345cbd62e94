"""A stream file as broker messages: numbered lines, cut into messages, published, and watched
in the database until every input is settled."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from app.stores import Database


def source_name(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return "run:" + digest.hexdigest()[:16]


@dataclass
class Published:
    """Messages sent: (first offset, lines) and when each was published (time.time())."""

    messages: list[tuple[int, list[str]]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return sum(len(m[1]) for m in self.messages)


def chunk_lines(numbered: Iterable[tuple[int, str]], batch: int) -> Iterator[tuple[int, list[str]]]:
    """Messages of up to `batch` consecutive lines; offsets are line numbers, so a message is
    cut at blank lines (which are no input) and error messages name the right line."""
    current: list[str] = []
    first = expected = None
    for number, line in numbered:
        if current and (number != expected or len(current) >= batch):
            yield first, current
            current = []
        if not current:
            first = number
        current.append(line)
        expected = number + 1
    if current:
        yield first, current


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for i, line in enumerate(fh):
            line = line.rstrip("\n")
            if line.strip():
                yield i, line


def publish(
    app,
    source: str,
    messages: Iterable[tuple[int, list[str]]],
    *,
    rate: float | None = None,
    on_message: Callable[[int], None] | None = None,
    out: Published | None = None,
) -> Published:
    """Send each message as one `intercept.ingest` task, at most `rate` lines per second;
    `out` (filled as messages go) lets another thread watch while this one publishes."""
    out = Published() if out is None else out
    started = time.monotonic()
    sent = 0
    with app.producer_or_acquire() as producer:
        for first, items in messages:
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            out.times.append(time.time())
            app.send_task("intercept.ingest", args=(source, first, items), queue="ingest", producer=producer)
            out.messages.append((first, items))
            sent += len(items)
            if on_message:
                on_message(len(items))
    return out


def wait_settled(db: Database, source: str, expected: int, timeout: float,
                 on_progress: Callable[[int], None] | None = None) -> bool:
    """Poll the database until every input is recorded and nothing is left in flight; False
    when nothing has moved for `timeout` seconds. Nothing is sent again from here: what a
    lost message or a crash left behind is the sweep's to re-drive."""
    last = None
    last_change = time.monotonic()
    # The counts scan the inbox: poll a large run less often, so watching does not slow it.
    interval = min(1.0, 0.05 + expected / 500_000)
    while True:
        p = db.progress(source)
        if on_progress:
            on_progress(p.recorded)
        if p.settled(expected):
            return True
        if p != last:
            last, last_change = p, time.monotonic()
        if time.monotonic() - last_change > timeout:
            return False
        time.sleep(interval)
