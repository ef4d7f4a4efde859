"""The CloudEvents Kafka protocol binding, checked with the CloudEvents Python SDK on the real broker.

Messages of every event type go through the outbox and the relay to the broker, are read
back, and are decoded by the SDK's Kafka binding the way a reader in another language
would (``from_kafka`` picks the mode from the headers); and an event the SDK writes is
handled by our consumer.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any

import pytest
from cloudevents.core.bindings import kafka as binding
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent
from confluent_kafka import Message, Producer
from django.db import transaction

from shared_events import examples
from shared_events.django.models import OutboxEvent
from shared_events.django.outbox import publish
from shared_events.django.relay import OutboxRelay
from shared_events.kafka_config import producer_config
from shared_events.testing import read_topic, requested_payload, running, wait_for
from shared_events.topics import REQUESTED, TOPICS, topic_name
from tests.testapp.models import Effect

pytestmark = pytest.mark.django_db(transaction=True)

STRUCTURED = b"application/cloudevents+json; charset=UTF-8"


def _as_binding_message(msg: Message) -> binding.KafkaMessage:
    return binding.KafkaMessage(headers=dict(msg.headers() or []), key=msg.key(), value=msg.value())


def _published_on_the_broker() -> dict[str, Message]:
    """One example event of every type through the outbox and the relay; each read back off its topic."""
    with transaction.atomic():
        for event_type in TOPICS:
            example = examples.example_event(event_type)
            publish(
                event_type,
                example.data,
                subject=example.subject,
                correlation_id=example.correlationid,
                event_id=example.id,
            )
    stop = threading.Event()
    with running(OutboxRelay(stop=stop).run, stop):
        wait_for(lambda: not OutboxEvent.objects.filter(sent_at__isnull=True).exists(), message="every row sent")
    return {event_type: read_topic(topic_name(event_type), 1)[0] for event_type in TOPICS}


def test_every_event_type_on_the_broker_decodes_with_the_cloudevents_sdk(kafka_topics):
    for event_type, msg in _published_on_the_broker().items():
        assert msg.headers() == [("content-type", STRUCTURED)], event_type  # structured mode, no ce_* header
        ours, wire = examples.example_event(event_type), json.loads(msg.value())
        event = binding.from_kafka(_as_binding_message(msg), JSONFormat())
        attributes: dict[str, Any] = event.get_attributes()
        assert attributes.pop("time") == datetime.fromisoformat(wire["time"])
        assert attributes == {
            "specversion": "1.0",
            "id": str(ours.id),
            "source": wire["source"],  # this test project's
            "type": event_type,
            "subject": ours.subject,
            "datacontenttype": "application/json",
            "dataschema": TOPICS[event_type].dataschema(),
            "correlationid": examples.REQUEST_ID,
            "partitionkey": ours.subject,  # the binding's name for the message key
        }, event_type
        assert event.get_data() == ours.data, event_type


def test_our_messages_are_not_taken_for_binary_mode_as_before(kafka_topics):
    # What messages looked like with ce_id/ce_type/ce_correlationid headers beside the structured value:
    # the SDK read them as binary mode and failed. Now the only header is content-type.
    msg = _published_on_the_broker()[REQUESTED]
    old_style = _as_binding_message(msg)
    old_style = binding.KafkaMessage(
        headers=old_style.headers | {"ce_id": b"x", "ce_type": REQUESTED.encode()},
        key=old_style.key,
        value=old_style.value,
    )
    with pytest.raises(Exception, match="source"):
        binding.from_kafka(old_style, JSONFormat())
    assert binding.from_kafka(_as_binding_message(msg), JSONFormat()).get_type() == REQUESTED


def test_the_consumer_handles_an_event_the_sdk_wrote_in_structured_mode(make_consumer):
    payload = requested_payload()
    event = SdkEvent(
        attributes={
            "id": "7b0f3c2e-52a1-4b8e-9d6f-0e1a2b3c4d5e",
            "source": "hospital-service",
            "type": REQUESTED,
            "subject": "from-the-sdk",
            "time": examples.example_event(REQUESTED).time,
            "datacontenttype": "application/json",
            "dataschema": f"urn:bloodbank:event:{REQUESTED}:v1",
            "correlationid": "from-the-sdk",
            "partitionkey": "from-the-sdk",
        },
        data=payload,
    )
    message = binding.to_structured(event, JSONFormat())
    assert message.headers == {"content-type": b"application/cloudevents+json"}
    producer = Producer(producer_config())
    producer.produce(topic_name(REQUESTED), key=message.key, value=message.value, headers=message.headers)
    assert producer.flush(10) == 0
    consumer = make_consumer()
    with running(consumer.run, consumer.stop):
        wait_for(lambda: Effect.objects.filter(subject="from-the-sdk").exists(), message="the SDK's event handled")
    assert str(Effect.objects.get(subject="from-the-sdk").event_id) == "7b0f3c2e-52a1-4b8e-9d6f-0e1a2b3c4d5e"
