"""Reading and replaying a service's dead-letter topic."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from confluent_kafka import OFFSET_STORED, Consumer, Message, TopicPartition

from shared_events.django.config import service_events
from shared_events.django.consumer import EventConsumer
from shared_events.django.models import OutboxEvent
from shared_events.kafka_config import consumer_config
from shared_events.topics import dlq_topic


def read_dead_letters(*, group_id: str, idle_timeout: float = 3.0, commit: bool) -> Iterator[Message]:
    """Yield this service's dead letters not yet consumed by ``group_id``, until idle."""
    consumer = Consumer(consumer_config(group_id, **{"enable.auto.commit": False}))
    # OFFSET_STORED: resume after the last replayed letter, or from the start.
    consumer.assign([TopicPartition(dlq_topic(service_events().service), 0, OFFSET_STORED)])
    idle_since = time.monotonic()
    try:
        while time.monotonic() - idle_since < idle_timeout:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            idle_since = time.monotonic()
            yield msg
            if commit:
                consumer.commit(message=msg, asynchronous=False)
    finally:
        consumer.close()


def replay_dead_letters(*, idle_timeout: float = 3.0) -> tuple[int, int]:
    """Feed dead letters back to this service's handlers; return (handled, dead-lettered again)."""
    conf = service_events()
    runner = EventConsumer(handlers=conf.handlers(), stop=threading.Event())
    before = OutboxEvent.objects.filter(event_type=f"dlq.{conf.service}").count()
    total = 0
    for msg in read_dead_letters(group_id=f"{conf.consumer_group}-dlq-replay", idle_timeout=idle_timeout, commit=True):
        runner.process(msg, replay=True)
        total += 1
    again = OutboxEvent.objects.filter(event_type=f"dlq.{conf.service}").count() - before
    return total - again, again
