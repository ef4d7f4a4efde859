"""Through the real broker: events consumed by the worker's handlers, ``notification.delivered`` published."""

import threading
import uuid

import pytest
from confluent_kafka import Producer

from notifications.handlers import HANDLERS
from notifications.models import Notification
from notifications.tests import factories
from shared_events import topics
from shared_events.django.config import service_events
from shared_events.django.consumer import EventConsumer
from shared_events.django.relay import OutboxRelay
from shared_events.envelope import parse_event
from shared_events.kafka_config import producer_config
from shared_events.testing import read_topic, running, wait_for
from shared_events.topics import topic_name

pytestmark = pytest.mark.django_db(transaction=True)


def _produce(*events) -> None:
    producer = Producer(producer_config())
    for event in events:
        producer.produce(topic_name(event.type), key=event.subject, value=event.envelope.to_bytes())
    assert producer.flush(10) == 0


def test_a_request_from_kafka_notifies_hospital_and_bank_once_and_each_is_published_as_delivered(kafka_topics):
    request = factories.requested()
    approval = factories.approved(request_id=request.data.request_id)
    _produce(request, request, approval)  # the request delivered twice
    consumer = EventConsumer(handlers=HANDLERS, stop=threading.Event(), group_id=f"test-{uuid.uuid4().hex[:8]}")
    relay_stop = threading.Event()
    with running(consumer.run, consumer.stop), running(OutboxRelay(stop=relay_stop).run, relay_stop):
        wait_for(lambda: Notification.objects.count() == 3, timeout=30, message="three notifications stored")
        delivered = [parse_event(m.value()) for m in read_topic(topic_name(topics.NOTIFICATION_DELIVERED), 3)]
    stored = {n.id: n for n in Notification.objects.all()}
    assert {e.data.notification_id for e in delivered} == set(stored)
    assert {(n.audience, n.kind) for n in stored.values()} == {
        (factories.ST_MARY.audience, "REQUEST_CREATED"),
        ("bloodbank", "REQUEST_CREATED"),
        (factories.ST_MARY.audience, "REQUEST_APPROVED"),
    }
    for event in delivered:
        assert event.subject == str(event.data.notification_id)
        assert event.envelope.source == "notification-service"
        assert event.data.audience == stored[event.data.notification_id].audience


def test_the_workers_consumer_with_its_fetch_wait_handles_events_as_they_come(kafka_topics):
    """The service's consumer settings (a 50 ms fetch wait, 64 KiB minimum) are those of each of its consumers and
    librdkafka's to accept, and a held fetch still returns what arrived: each event is handled, one at a time,
    without waiting for 64 KiB."""
    settings = service_events().consumer_settings
    assert settings["fetch.wait.max.ms"] <= service_events().consumer_batch_wait * 1000  # no later than a batch
    consumer = EventConsumer(handlers=HANDLERS, stop=threading.Event(), group_id=f"test-{uuid.uuid4().hex[:8]}")
    assert consumer._consumer_overrides.items() >= settings.items()  # as run_worker makes it: the service's settings
    request = factories.requested()
    with running(consumer.run, consumer.stop):
        _produce(request)  # a few hundred bytes: the fetch is answered at its wait, not at 64 KiB
        wait_for(lambda: Notification.objects.count() == 2, timeout=30, message="the request's two notices")
        _produce(factories.approved(request_id=request.data.request_id))
        wait_for(lambda: Notification.objects.count() == 3, timeout=30, message="the approval's notice")
