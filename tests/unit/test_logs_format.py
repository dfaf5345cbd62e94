"""The JSON log format: one object per line, the ids a call site names as fields, a traceback
as one field (never lines of its own that a log pipeline would split)."""

from __future__ import annotations

import io
import json
import logging

from workers.logging_setup import JsonFormatter


def _logged(call) -> list[dict]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.logs_format")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        call(logger)
    finally:
        logger.removeHandler(handler)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_ids_given_by_the_call_site_are_fields_and_others_are_not():
    (line,) = _logged(lambda log: log.info("refund %s: %s", "r-7", "confirmed", extra={"refund_id": "r-7", "order_id": "o-42",
                                                                                         "colour": "blue"}))
    assert line["message"] == "refund r-7: confirmed" and line["level"] == "info" and line["logger"] == "test.logs_format"
    assert (line["refund_id"], line["order_id"]) == ("r-7", "o-42")
    assert "colour" not in line and "task" not in line  # not an id; no Celery task runs here


def test_a_traceback_is_one_field_of_one_line():
    def fail(log):
        try:
            {}["missing"]
        except KeyError:
            log.exception("input %s could not be applied", 12, extra={"input_id": 12})

    (line,) = _logged(fail)
    assert line["input_id"] == 12
    assert line["exception"].startswith("Traceback") and "KeyError: 'missing'" in line["exception"]
