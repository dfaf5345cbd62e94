"""The `intercept` command line: one click group, one module per group of commands.

Each command parses, builds and hands over; heavy imports wait inside the command so that
`intercept --help` stays fast.
"""

from __future__ import annotations

import click

from workers.cli import edges, load, runtime


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="refund-intercept", prog_name="intercept")
def main() -> None:
    """Refund interception workers: stage logic for refunds, holds, intercepts, fees and claims.

    The rules are in docs/domain.md; configuration is read from INTERCEPT_* variables (README).
    """


for command in (*runtime.commands, *edges.commands, *load.commands):
    main.add_command(command)
