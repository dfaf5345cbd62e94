"""workers.waiting on each real broker: what a worker takes from its queue besides the message it
was given, and that nothing it takes can be lost (acknowledged only when told, handed back
otherwise)."""

from __future__ import annotations

import pytest
from celery import Celery

from tests.helpers import ready_messages
from workers.app import task_queues
from workers.waiting import WaitingMessages


@pytest.fixture
def client(broker_url):
    app = Celery(broker=broker_url)
    app.conf.task_queues = task_queues(broker_url)
    app.conf.broker_transport_options = {"confirm_publish": True} if broker_url.startswith("amqp") else {}
    yield app
    app.close()


def _ingest(app, first_offset: int, items: list[str]) -> None:
    app.send_task("intercept.ingest", args=("s", first_offset, items), kwargs={"first_line": first_offset}, queue="ingest")


def _ready(app) -> int:
    return ready_messages(app.conf.broker_url)


def test_takes_ingest_and_apply_messages_and_leaves_another_task_on_the_queue(client):
    for first in (0, 2, 4):
        _ingest(client, first, ["a", "b"])
    client.send_task("intercept.apply", args=(["m1", "m2"],), queue="ingest")
    client.send_task("intercept.sweep", queue="ingest")
    _ingest(client, 6, ["c"])
    waiting = WaitingMessages(client)
    try:
        taken = waiting.take(100)
        assert [(m.source, m.first_offset, m.items, m.first_line) for m in taken.inputs] == [
            ("s", 0, ["a", "b"], 0), ("s", 2, ["a", "b"], 2), ("s", 4, ["a", "b"], 4)]
        assert taken.partitions == {"m1", "m2"}
        assert taken.items == 6 and taken.came_back == []
        taken.ack()
        # The sweep is not the taker's: it is left for its own delivery, and so is what is behind it.
        assert _ready(client) == 2
    finally:
        waiting.close()


def test_takes_no_more_than_asked_for_in_inputs(client):
    for first in (0, 2, 4):
        _ingest(client, first, ["a", "b"])
    waiting = WaitingMessages(client)
    try:
        taken = waiting.take(3)
        assert [m.first_offset for m in taken.inputs] == [0, 2]
        taken.ack()
        assert _ready(client) == 1
        assert waiting.take(0).messages == []
    finally:
        waiting.close()


def test_messages_handed_back_come_again_marked_as_having_come_back(client):
    for first in (0, 2):
        _ingest(client, first, ["a", "b"])
    waiting = WaitingMessages(client)
    try:
        taken = waiting.take(100)
        assert len(taken.inputs) == 2
        taken.give_back()  # the work they carry failed: nothing is acknowledged
        assert _ready(client) == 2
        again = waiting.take(100)
        # Handed back, they count as having come back: applied with care (app.isolation).
        assert again.inputs == [] and sorted(m.first_offset for m in again.came_back) == [0, 2]
        again.ack()
        assert _ready(client) == 0
    finally:
        waiting.close()


def test_an_unreadable_ingest_message_is_left_for_its_own_task_to_refuse(client):
    client.send_task("intercept.ingest", args=("s",), queue="ingest")  # too few arguments
    _ingest(client, 0, ["a"])
    waiting = WaitingMessages(client)
    try:
        taken = waiting.take(100)
        assert taken.messages == []
        assert _ready(client) == 2
    finally:
        waiting.close()


def test_unacknowledged_messages_go_back_when_the_taker_closes(client):
    _ingest(client, 0, ["a"])
    waiting = WaitingMessages(client)
    taken = waiting.take(100)
    assert len(taken.inputs) == 1
    waiting.close()  # a worker stopping (or dying) before the work committed
    assert _ready(client) == 1
