"""The `intercept` command line: one click group, one module per group of commands.

Each command parses, builds and hands over; heavy imports wait inside the command so that
`intercept --help` stays fast.
"""

from __future__ import annotations

import click

from workers.cli import edges, load, runtime


@click.group()
def main() -> None:
    """Refund interception workers: stage logic for refunds, holds, intercepts, fees and claims."""


for command in (*runtime.commands, *edges.commands, *load.commands):
    main.add_command(command)
