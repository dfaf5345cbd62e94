"""A stream file as broker messages: numbered lines, cut into messages, published, and watched
in the database until every input is settled."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

from app.stores import Database


def source_name(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return "run:" + digest.hexdigest()[:16]


class StreamLine(NamedTuple):
    offset: int  # the input's place among the stream's inputs (blank lines are no input)
    line: int  # its line in the file, 0-based, for messages that name it
    text: str


class Message(NamedTuple):
    first_offset: int
    first_line: int
    items: list[str]


@dataclass
class Published:
    """Messages sent, and when each was published (time.time())."""

    messages: list[Message] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return sum(len(m.items) for m in self.messages)


def numbered_lines(path: Path) -> Iterator[StreamLine]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        offset = 0
        for number, text in enumerate(fh):
            text = text.rstrip("\n")
            if text.strip():
                yield StreamLine(offset, number, text)
                offset += 1


def chunk_lines(lines: Iterable[StreamLine], batch: int) -> Iterator[Message]:
    """Messages of up to `batch` consecutive inputs. Offsets run on across blank lines, so the
    database sees no gap where a file has an empty line; a message is cut at one, so that its
    lines are consecutive in the file too and errors name the right line."""
    current: list[str] = []
    first: StreamLine | None = None
    next_line = None
    for sl in lines:
        if current and (sl.line != next_line or len(current) >= batch):
            yield Message(first.offset, first.line, current)
            current = []
        if not current:
            first = sl
        current.append(sl.text)
        next_line = sl.line + 1
    if current:
        yield Message(first.offset, first.line, current)


def publish(
    app,
    source: str,
    messages: Iterable[Message],
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
        for message in messages:
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            out.times.append(time.time())
            app.send_task("intercept.ingest", args=(source, message.first_offset, message.items),
                          kwargs={"first_line": message.first_line}, queue="ingest", producer=producer)
            out.messages.append(message)
            sent += len(message.items)
            if on_message:
                on_message(len(message.items))
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
