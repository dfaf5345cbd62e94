"""A stream file (JSON Lines): its inputs numbered, and read again by offset.

Offsets count inputs, not lines: a blank line is no input, so it leaves no gap in a source's
watermark. Each input keeps its file line, for messages that name it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, NamedTuple


class StreamLine(NamedTuple):
    offset: int  # the input's place among the stream's inputs
    line: int  # its line in the file, 0-based
    text: str


def numbered_lines(path: str | Path) -> Iterator[StreamLine]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        offset = 0
        for number, text in enumerate(fh):
            text = text.rstrip("\n")
            if text.strip():
                yield StreamLine(offset, number, text)
                offset += 1


class Message(NamedTuple):
    first_offset: int
    first_line: int
    items: list[str]


def chunk_lines(lines: Iterable[StreamLine], batch: int) -> Iterator[Message]:
    """Messages of up to `batch` consecutive inputs. Offsets run on across blank lines, so the
    database sees no gap where a file has an empty line; a message is cut at one (and wherever
    an offset is skipped), so that its lines are consecutive in the file too and errors name the
    right line."""
    current: list[str] = []
    first: StreamLine | None = None
    next_line = next_offset = None
    for sl in lines:
        if current and (sl.line != next_line or sl.offset != next_offset or len(current) >= batch):
            yield Message(first.offset, first.line, current)
            current = []
        if not current:
            first = sl
        current.append(sl.text)
        next_line, next_offset = sl.line + 1, sl.offset + 1
    if current:
        yield Message(first.offset, first.line, current)


class StreamFiles:
    """domain.ports.StreamLines over files on this host."""

    def read(self, locator: str, offsets: Iterable[int], batch: int) -> list[Message]:
        wanted = set(offsets)
        if not wanted:
            return []
        last = max(wanted)

        def found() -> Iterator[StreamLine]:
            for sl in numbered_lines(locator):
                if sl.offset in wanted:
                    yield sl
                if sl.offset >= last:
                    return

        return list(chunk_lines(found(), batch))
