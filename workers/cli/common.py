"""What several command modules build the same way: the settings, and a migrated engine."""

from __future__ import annotations


def settings():
    from workers import settings as settings_mod  # noqa: PLC0415

    return settings_mod.load()


def _migrated(url: str):
    from adapters.db.engine import make_engine, migrate  # noqa: PLC0415

    db = make_engine(url)
    migrate(db)
    return db


def refuse_separate_databases(s, reads: str = "one database") -> None:
    """A command that reads one database stops, saying so, when the shards are in several
    (INTERCEPT_SHARD_URLS), instead of answering from the first alone."""
    import click  # noqa: PLC0415

    if s.separate_shard_databases:
        ctx = click.get_current_context(silent=True)
        command = f"`{ctx.command_path}`" if ctx is not None else "this command"
        raise click.ClickException(f"{command} is not supported with INTERCEPT_SHARD_URLS yet: it reads {reads}, "
                                   f"and the shards are in {len(set(s.shard_database_urls))} databases")


def engine(s=None):
    """The configured database, its schema brought up to date: a command run on a database no
    worker has touched yet answers (nothing there yet) instead of failing on a missing table.
    With the shards in separate databases the command is refused (it would read only the first)."""
    s = s or settings()
    refuse_separate_databases(s)
    return _migrated(s.database_url)


def routing_engine(s=None):
    """The routing database (the first of INTERCEPT_SHARD_URLS, or the only one), migrated: for
    what lives there alone (the ingress's dead letters, the sources)."""
    return _migrated((s or settings()).database_url)


def engines(s=None) -> list:
    """Every shard database, each once, the routing database first, each migrated."""
    s = s or settings()
    return [_migrated(url) for url in dict.fromkeys(s.shard_database_urls)]


def uvicorn_log_config() -> dict:
    """uvicorn's logging with its access log on stderr too (it writes it to stdout): a server's
    lines are logs, and stdout is for results."""
    import copy  # noqa: PLC0415

    from uvicorn.config import LOGGING_CONFIG  # noqa: PLC0415

    from workers.logging_setup import uvicorn_formatters  # noqa: PLC0415

    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    return uvicorn_formatters(config, settings().log_format)
