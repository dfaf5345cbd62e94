"""What several command modules build the same way: the settings, and a migrated engine."""

from __future__ import annotations


def settings():
    from workers import settings as settings_mod  # noqa: PLC0415

    return settings_mod.load()


def engine(s=None):
    """The configured database, its schema brought up to date: a command run on a database no
    worker has touched yet answers (nothing there yet) instead of failing on a missing table."""
    from adapters.db.engine import make_engine, migrate  # noqa: PLC0415

    db = make_engine((s or settings()).database_url)
    migrate(db)
    return db


def uvicorn_log_config() -> dict:
    """uvicorn's logging with its access log on stderr too (it writes it to stdout): a server's
    lines are logs, and stdout is for results."""
    import copy  # noqa: PLC0415

    from uvicorn.config import LOGGING_CONFIG  # noqa: PLC0415

    from workers.logging_setup import uvicorn_formatters  # noqa: PLC0415

    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    return uvicorn_formatters(config, settings().log_format)
