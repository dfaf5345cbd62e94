"""A stream file as broker messages: numbered lines, cut into messages, published, and watched
in the database until every input is settled."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from adapters.stream_file import Message
from app.stores import Database, SweepReport


def source_name(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return "run:" + digest.hexdigest()[:16]


@dataclass
class Published:
    """Messages sent, and when each was published (time.time())."""

    messages: list[Message] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return sum(len(m.items) for m in self.messages)


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


def register(db: Database, source: str, path: Path, inputs: int) -> datetime:
    """Tell the database where the stream's lines are and how many inputs it holds, before
    publishing: the sweep re-drives what the broker loses from there. Returns the time."""
    now = datetime.now(timezone.utc)
    with db.transaction() as uow:
        uow.sources.register(source, str(path.resolve()), inputs, now)
    return now


def redriven_since(db: Database, at: datetime) -> SweepReport:
    with db.transaction() as uow:
        return uow.sweeps.since(at)


def describe_redrive(report: SweepReport) -> str:
    """The sweep's part in a run, in one sentence for the run's summary."""
    if not report.redrove_anything:
        return "the sweep re-drove nothing: no message was lost and no work was left behind"
    done = [f"{n} {what}" for n, what in (
        (report.lines, "stream lines read again from the file"), (report.inputs, "inputs left unapplied"),
        (report.actions, "refund or intercept calls left unanswered"), (report.relayed, "outbound events left unpublished"),
        (report.deadlines, "outcomes of deadlines"),
    ) if n]
    text = "the sweep re-drove " + (", ".join(done) if done else "nothing")
    if report.problems:
        text += "; it could not re-drive: " + "; ".join(report.problems)
    return text
