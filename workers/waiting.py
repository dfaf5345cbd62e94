"""The ingest messages waiting behind the one a worker runs, taken to be applied with it.

A worker that falls behind finds its queue holding many small messages; taking them with its
own (app.coalescing) turns a backlog into a few large messages, so it drains at the
large-message rate. They are fetched unacknowledged on a connection of this process's own and
acknowledged only after the work they carry has committed, as the one Celery delivered is
(acks_late): a worker that dies holding them leaves them to the broker to deliver again (at
once on RabbitMQ; on Redis after the visibility timeout, and the sweep re-drives a stream's
lines sooner), and their inputs are deduplicated wherever they are applied twice.

Taking is a speed-up, never a condition: when the broker cannot be read this way, the worker
carries on with the message it has.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from app.coalescing import InputMessage

log = logging.getLogger(__name__)

INGEST_TASK = "intercept.ingest"
APPLY_TASK = "intercept.apply"
# Apply messages carry no inputs: the number of messages taken is bounded too.
MAX_MESSAGES = 200


@dataclass
class Taken:
    """What the waiting messages carry, and the messages, to acknowledge or hand back."""

    inputs: list[InputMessage] = field(default_factory=list)
    partitions: set[str] = field(default_factory=set)  # apply messages' partitions
    came_back: list[InputMessage] = field(default_factory=list)  # redelivered: each applied with care
    messages: list[Any] = field(default_factory=list)

    @property
    def items(self) -> int:
        return sum(len(m.items) for m in self.inputs + self.came_back)

    def ack(self) -> None:
        for message in self.messages:
            try:
                message.ack()
            except Exception:  # noqa: BLE001 - it comes again and is deduplicated
                log.warning("a taken message could not be acknowledged; the broker delivers it again", exc_info=True)

    def give_back(self) -> None:
        for message in self.messages:
            try:
                message.requeue()
            except Exception:  # noqa: BLE001 - unacknowledged, the broker delivers it again
                log.warning("a taken message could not be handed back; the broker delivers it again", exc_info=True)


def ingest_message(args: list, kwargs: dict) -> InputMessage:
    """An `intercept.ingest` task's arguments (workers.tasks.ingest's signature) as a message."""
    bound = dict(zip(("source", "first_offset", "items", "first_line"), args))
    bound.update(kwargs)
    return InputMessage(bound["source"], bound["first_offset"], list(bound["items"]), bound.get("first_line"))


class WaitingMessages:
    """Takes ingest and apply messages from one queue, without waiting, up to a number of inputs."""

    def __init__(self, app, queue_name: str = "ingest"):
        self.app = app
        self.queue_name = queue_name
        self._connection = None
        self._queue = None

    def take(self, up_to_items: int) -> Taken:
        taken = Taken()
        if up_to_items <= 0:
            return taken
        try:
            queue = self._bound_queue()
            while taken.items < up_to_items and len(taken.messages) < MAX_MESSAGES:
                message = queue.get(no_ack=False, accept=["json"])
                if message is None:
                    break
                if not self._add(taken, message):
                    message.requeue()  # another task's, or unreadable: its own delivery deals with it
                    break
        except Exception:  # noqa: BLE001 - a speed-up only: go on with what was taken
            log.warning("could not take the waiting messages; going on with those taken", exc_info=True)
            self.close()
        return taken

    def _add(self, taken: Taken, message) -> bool:
        task = (message.headers or {}).get("task")
        try:
            args, kwargs, _embed = message.decode()
            if task == INGEST_TASK:
                input_message = ingest_message(args, kwargs)
            elif task == APPLY_TASK:
                partitions = set(args[0] if args else kwargs["partitions"])
            else:
                return False
        except Exception:  # noqa: BLE001 - left for its own task to fail and say why
            return False
        taken.messages.append(message)
        if task == APPLY_TASK:
            taken.partitions |= partitions
        elif (message.delivery_info or {}).get("redelivered"):
            taken.came_back.append(input_message)
        else:
            taken.inputs.append(input_message)
        return True

    def _bound_queue(self):
        if self._queue is None:
            self._connection = self.app.connection_for_read()
            self._connection.ensure_connection(max_retries=1)
            # As the app declares it (on RabbitMQ a quorum queue: a plain declaration is refused).
            queue = next(q for q in self.app.conf.task_queues if q.name == self.queue_name)
            self._queue = queue.bind(self._connection.default_channel)
        return self._queue

    def close(self) -> None:
        try:
            if self._connection is not None:
                self._connection.release()
        except Exception:  # noqa: BLE001
            pass
        self._connection = self._queue = None
