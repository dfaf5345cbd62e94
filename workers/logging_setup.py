"""Logs on stderr, as text for a person or as one JSON object per line for a log pipeline
(INTERCEPT_LOG_FORMAT=json|text), for every process: workers and beat (through Celery's
setup_logging signal, so Celery does not install its own handlers), the ingress (uvicorn's
loggers), and the commands.

A JSON line holds `ts` (UTC, RFC 3339), `level`, `logger`, `message`, `process`, the Celery
task (`task`, `task_id`) when a task is running, every identifier the call site passed in
`extra` (`order_id`, `refund_id`, `event_id`, `intercept_id`, `input_id`, `partition`,
`source`), and `exception` with the traceback. Ids are fields, never only words of the message,
so `jq 'select(.refund_id == "r-7")'` finds every line about a refund.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone

import orjson

# The identifiers a call site may pass as `extra` (app/actions.py, app/applying.py, ...).
ID_FIELDS = ("order_id", "refund_id", "event_id", "intercept_id", "input_id", "partition", "source")
TEXT_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        task = _current_task()
        if task is not None:
            line["task"], line["task_id"] = task
        for name in ID_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


def _current_task() -> tuple[str, str] | None:
    celery_state = sys.modules.get("celery._state")  # not imported by a process that runs no task
    if celery_state is None:
        return None
    task = celery_state.get_current_task()
    if task is None or task.request.id is None:
        return None
    return task.name, task.request.id


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(log_format: str, level: int | str = logging.WARNING, logfile: str | None = None) -> None:
    """One handler on the root logger: on stderr (results go to stdout), or in `logfile`."""
    handler = logging.FileHandler(logfile) if logfile else logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # a library's warning is a log line like any other (JSON too)


def uvicorn_formatters(config: dict, log_format: str) -> dict:
    """uvicorn's logging configuration with our JSON formatter on its loggers (json only)."""
    if log_format == "json":
        for name in config["formatters"]:
            config["formatters"][name] = {"()": "workers.logging_setup.JsonFormatter"}
    return config
