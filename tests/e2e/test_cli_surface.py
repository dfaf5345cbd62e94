"""The command line's own surface as a new user meets it: --version, -h everywhere, and the
pass-through commands showing Celery's options."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from tests.helpers import intercept


def test_version_names_the_installed_release():
    result = intercept("--version", env={})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"intercept, version {version('refund-intercept')}"


@pytest.mark.parametrize("args", [("-h",), ("run", "-h"), ("dlq", "list", "-h"), ("generate", "-h")])
def test_short_help_works_on_the_group_and_every_level_of_command(args):
    result = intercept(*args, env={})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: intercept {' '.join(args[:-1])}".rstrip()), result.stdout[:200]
    assert "-h, --help" in result.stdout


@pytest.mark.parametrize("command, celery_option", [("worker", "--concurrency"), ("beat", "--schedule")])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_pass_through_commands_show_celerys_own_options(tmp_path, command, celery_option, flag):
    result = intercept(command, flag, env={"INTERCEPT_HOME": str(tmp_path)}, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"intercept {command}: Run ")
    assert f" {command} [OPTIONS]" in result.stdout  # Celery's usage line, of this subcommand
    assert celery_option in result.stdout
