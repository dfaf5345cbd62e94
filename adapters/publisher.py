"""Publishing outbound events to the `intercept.outcomes` topic exchange (SPEC §7)."""

from __future__ import annotations

from typing import Any, Iterable, Protocol

from kombu import Exchange

OUTCOMES_EXCHANGE = Exchange("intercept.outcomes", type="topic", durable=True)


class Publisher(Protocol):
    def publish(self, envelopes: Iterable[dict[str, Any]]) -> None: ...


class KombuPublisher:
    """Publishes each envelope as persistent JSON with its event type as the routing key."""

    def __init__(self, producer_pool):
        self._pool = producer_pool
        self._declared = False

    def publish(self, envelopes: Iterable[dict[str, Any]]) -> None:
        envelopes = list(envelopes)
        if not envelopes:
            return
        with self._pool.acquire(block=True) as producer:
            if not self._declared:
                OUTCOMES_EXCHANGE(producer.channel).declare()
                self._declared = True
            for env in envelopes:
                producer.publish(
                    env,
                    exchange=OUTCOMES_EXCHANGE,
                    routing_key=env["type"],
                    serializer="json",
                    delivery_mode=2,
                    message_id=env["event_id"],
                    retry=True,
                    retry_policy={"max_retries": 5, "interval_start": 0.2, "interval_step": 0.5},
                )
