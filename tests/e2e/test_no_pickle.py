"""No pickle anywhere: the code never loads one, Celery and the outcome publisher speak JSON
only, and a real worker handed a pickled message (one whose loading would run a command)
refuses it unread and carries on."""

from __future__ import annotations

import os
import re
import uuid

from celery import Celery

from tests.helpers import ROOT, spawn_intercept, wait_for

# What loads or writes Python objects from bytes: a message or a file in one of these formats
# runs whatever code its author chose when it is read.
UNSAFE = re.compile(r"\bimport\s+(c?pickle|dill|cloudpickle|shelve|marshal)\b|\bfrom\s+(c?pickle|dill|cloudpickle|shelve|marshal)\s+import"
                    r"|\bpickle\.|\byaml\.(unsafe_)?load\(|['\"]pickle['\"]")
PACKAGES = ("domain", "app", "adapters", "workers", "loadtest")


def test_no_module_of_the_project_uses_pickle():
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if UNSAFE.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert found == []
    assert UNSAFE.search("import pickle") and UNSAFE.search('accept_content=["json", "pickle"]')  # the search finds what it must


def test_celery_accepts_and_writes_json_only():
    from workers.app import app

    assert list(app.conf.accept_content) == ["json"]
    assert (app.conf.task_serializer, app.conf.result_serializer, app.conf.event_serializer) == ("json", "json", "json")
    assert list(app.conf.result_accept_content or app.conf.accept_content) == ["json"]


class RunsACommandWhenUnpickled:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_worker_refuses_a_pickled_message_unread(tmp_path, pg_url, redis_url):
    marker = tmp_path / "pickle-ran"
    log = tmp_path / "worker.log"
    env = {"INTERCEPT_DATABASE_URL": pg_url, "INTERCEPT_BROKER_URL": redis_url, "INTERCEPT_CLOCK": "wall"}
    worker = spawn_intercept("worker", "-P", "solo", "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "INFO",
                             env=env, log=log)
    try:
        wait_for(lambda: "ready" in log.read_text(), timeout=90, what="the worker to be ready")
        sender = Celery("someone-else", broker=redis_url)
        sender.conf.update(task_serializer="pickle", accept_content=["pickle", "json"])
        sender.send_task("intercept.apply", args=[RunsACommandWhenUnpickled(str(marker))], task_id=str(uuid.uuid4()),
                         exchange="intercept", routing_key="ingest", serializer="pickle")
        wait_for(lambda: "Refusing to deserialize untrusted content of type pickle" in log.read_text(), timeout=60,
                 what="the worker to refuse the pickled message")
        assert worker.poll() is None, "the worker died of it"
        assert not marker.exists(), "the pickled message was loaded: its command ran"
    finally:
        worker.terminate()
        worker.wait(timeout=30)
