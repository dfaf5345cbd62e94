"""Where a command writes: its results to stdout, its progress and logs to stderr.

A script reads one stream while a person watches the other; a progress bar is drawn only when
stderr is a terminal, so a redirected stderr (a log file, CI) gets nothing extra.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def logs() -> Console:
    # soft_wrap: a log line stays one line in a file, whatever width rich assumes there.
    return Console(stderr=True, soft_wrap=True)


def progress_bar(console: Console) -> Progress:
    return Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, disable=not console.is_terminal)
