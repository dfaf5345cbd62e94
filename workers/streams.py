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
from app.stores import Database, Progress, SweepReport


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
    started_at: float | None = None  # when publishing began (time.time())

    @property
    def lines(self) -> int:
        return sum(len(m.items) for m in self.messages)


@dataclass(frozen=True)
class RateSchedule:
    """Lines per second over time, as a relay would receive them: `steps` of (rate, seconds),
    the last step's seconds None (until the stream ends). Written `8000:60,2000`."""

    steps: tuple[tuple[float, float | None], ...]

    @classmethod
    def parse(cls, text: str) -> RateSchedule:
        steps = []
        parts = [p.strip() for p in text.split(",")]
        for n, part in enumerate(parts):
            rate_text, _, seconds_text = part.partition(":")
            try:
                rate = float(rate_text)
                seconds = float(seconds_text) if seconds_text else None
            except ValueError:
                raise ValueError(f"{part!r}: a step is RATE or RATE:SECONDS, numbers") from None
            if rate <= 0 or (seconds is not None and seconds <= 0):
                raise ValueError(f"{part!r}: rates and seconds must be positive")
            if seconds is None and n != len(parts) - 1:
                raise ValueError(f"{part!r}: only the last step may go on without SECONDS")
            steps.append((rate, seconds))
        if steps[-1][1] is not None:
            steps[-1] = (steps[-1][0], None)  # the last step runs to the stream's end
        return cls(tuple(steps))

    @property
    def lowest(self) -> float:
        return min(rate for rate, _ in self.steps)

    def due_s(self, lines: int) -> float:
        """Seconds after the start by which `lines` lines have arrived."""
        at, left = 0.0, float(lines)
        for rate, seconds in self.steps:
            span = rate * seconds if seconds is not None else float("inf")
            if left <= span:
                return at + left / rate
            at, left = at + seconds, left - span
        return at

    def __str__(self) -> str:
        return ",".join(f"{rate:g}" + (f":{seconds:g}" if seconds is not None else "") for rate, seconds in self.steps)


def publish(
    app,
    source: str,
    messages: Iterable[Message],
    *,
    rate: float | RateSchedule | None = None,
    on_message: Callable[[int], None] | None = None,
    out: Published | None = None,
) -> Published:
    """Send each message as one `intercept.ingest` task, as a relay would: once its last line
    has arrived at `rate` (lines per second, or a schedule). `out` (filled as messages go)
    lets another thread watch while this one publishes."""
    out = Published() if out is None else out
    schedule = RateSchedule(((rate, None),)) if isinstance(rate, (int, float)) else rate
    started = time.monotonic()
    out.started_at = time.time()
    sent = 0
    with app.producer_or_acquire() as producer:
        for message in messages:
            if schedule:
                ahead = schedule.due_s(sent + len(message.items) - 1) - (time.monotonic() - started)
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
                 on_progress: Callable[[Progress], None] | None = None) -> bool:
    """Poll the database until every input is recorded and nothing is left in flight; False
    when nothing has moved for `timeout` seconds. Nothing is sent again from here: what a
    lost message or a crash left behind is the sweep's to re-drive."""
    last = None
    last_change = time.monotonic()
    # The counts scan the inbox: poll a large run less often, so watching does not slow it.
    interval = min(1.0, 0.05 + expected / 500_000)
    # Shards in separate databases: their counts are added up from several reads, which one
    # hand-over's two commits can fall between (SqlDatabase.progress), so settled must be seen
    # twice in a row.
    needed = 2 if getattr(db, "separate", False) else 1
    seen = 0
    while True:
        p = db.progress(source)
        if on_progress:
            on_progress(p)
        seen = seen + 1 if p.settled(expected) else 0
        if seen >= needed:
            return True
        if seen:
            time.sleep(interval)
            continue
        if p != last:
            last, last_change = p, time.monotonic()
        if time.monotonic() - last_change > timeout:
            return False
        time.sleep(interval)


class LargestBacklog:
    """The most inputs recorded and not applied yet that a run saw, and the oldest wait."""

    def __init__(self):
        self.inputs = 0
        self.oldest_s = 0.0

    def see(self, p: Progress) -> None:
        self.inputs = max(self.inputs, p.unapplied + p.waiting_in_order)
        if p.oldest_unapplied_at is not None:
            self.oldest_s = max(self.oldest_s, (datetime.now(timezone.utc) - p.oldest_unapplied_at).total_seconds())

    def describe(self) -> str:
        return (f"backlog at its largest: {self.inputs} inputs recorded and not applied yet, "
                f"the oldest waiting {self.oldest_s:.1f} s")


def register(db: Database, source: str, path: Path, inputs: int) -> datetime:
    """Tell the database where the stream's lines are and how many inputs it holds, before
    publishing: the sweep re-drives what the broker loses from there. Returns the time."""
    now = datetime.now(timezone.utc)
    with db.transaction() as uow:
        uow.sources.register(source, str(path.resolve()), inputs, now)
    return now


def redriven_since(db: Database, at: datetime) -> SweepReport:
    """What the sweeps re-drove since `at`, in every database (each logs what it found there)."""
    total = SweepReport(at)
    for shard in db.database_shards():
        with db.transaction(shard) as uow:
            total.add(uow.sweeps.since(at))
    return total


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
