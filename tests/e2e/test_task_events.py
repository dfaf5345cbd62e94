"""Task events are on: a monitor (Flower, `celery events`) sees the tasks a run publishes and its
workers execute; INTERCEPT_TASK_EVENTS=0 turns them off."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from celery import Celery

from tests.helpers import ROOT, intercept, wait_for


def _watch(broker_url: str, seen: list[tuple[str, str]], stop: threading.Event, ready: threading.Event) -> None:
    monitor = Celery(broker=broker_url)
    names: dict[str, str] = {}

    def on_event(event: dict) -> None:
        if event["type"] in ("task-sent", "task-received"):
            names[event["uuid"]] = event.get("name", "")
        if event["type"].startswith("task-"):
            seen.append((event["type"], names.get(event["uuid"], "")))

    with monitor.connection() as conn:
        receiver = monitor.events.Receiver(conn, handlers={"*": on_event})
        with receiver.consumer_context(wakeup=False) as (connection, _channel, _consumers):
            ready.set()  # subscribed: events are broadcast, none is kept for a late listener
            while not stop.is_set():
                try:
                    connection.drain_events(timeout=0.5)
                except (TimeoutError, socket.timeout):
                    pass


@pytest.mark.parametrize("switch, expect_events", [(None, True), ("0", False)])
def test_a_monitor_sees_the_tasks_of_a_run(tmp_path, pg_url, redis_url, switch, expect_events):
    seen: list[tuple[str, str]] = []
    stop, ready = threading.Event(), threading.Event()
    watcher = threading.Thread(target=_watch, args=(redis_url, seen, stop, ready), daemon=True)
    watcher.start()
    assert ready.wait(30)
    env = {"INTERCEPT_HOME": str(tmp_path), "INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": redis_url}
    if switch is not None:
        env["INTERCEPT_TASK_EVENTS"] = switch
    stream = ROOT / "workers" / "samples" / "sample.jsonl"
    try:
        result = intercept("run", str(stream), "--workers", "1", "--batch", "100", env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        if expect_events:
            wait_for(lambda: ("task-succeeded", "intercept.ingest") in seen, timeout=30, what="the workers' events")
        else:
            time.sleep(2)  # what a worker would have sent has arrived by now
    finally:
        stop.set()
        watcher.join(timeout=10)
    kinds = {kind for kind, name in seen if name == "intercept.ingest"}
    if expect_events:
        assert {"task-sent", "task-received", "task-started", "task-succeeded"} <= kinds, seen[:20]
    else:
        assert seen == []
