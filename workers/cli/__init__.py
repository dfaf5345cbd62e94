"""The `intercept` command line: one click group, one module per group of commands.

Each command parses, builds and hands over; heavy imports wait inside the command so that
`intercept --help` stays fast. Every command writes its results to stdout and its progress and
logs to stderr, so a script can read one while a person watches the other.
"""

from __future__ import annotations

import click

from workers.cli import admin, chaos, console_cmd, edges, insight, load, ops, runtime
from workers.cli import policy as policy_commands


class InterceptGroup(click.Group):
    """Maps a service out of reach, wherever a command meets it, to one line and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            problem = _unreachable(exc)
            if problem is None:
                raise
            raise click.ClickException(str(problem)) from None


def _unreachable(exc: Exception):
    from workers import settings as settings_mod  # noqa: PLC0415
    from workers.reachability import unreachable  # noqa: PLC0415

    s = settings_mod.current()
    return unreachable(exc, s.database_url, s.broker_url, s.redis_url)


@click.group(cls=InterceptGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="refund-intercept", prog_name="intercept")
def main() -> None:
    """Refund interception workers: stage logic for refunds, holds, intercepts, fees and claims.

    The rules are in docs/domain.md; configuration is read from INTERCEPT_* variables (README).
    """


COMMAND_MODULES = (runtime, edges, load, admin, policy_commands, insight, console_cmd, ops, chaos)

for command in (command for module in COMMAND_MODULES for command in module.commands):
    main.add_command(command)
