"""Shared event contract of the blood bank system.

Everything two services must agree on lives here once: the CloudEvents
envelope, one pydantic model per event type, the topic registry and the Kafka
client settings. The Django side (outbox, inbox, relay, consumer runner) is in
``shared_events.django``.
"""

from shared_events.envelope import (
    CloudEvent,
    Event,
    EventError,
    build_event,
    parse_event,
)
from shared_events.topics import TOPICS, TopicSpec, dlq_topic, topic_name

__all__ = [
    "TOPICS",
    "CloudEvent",
    "Event",
    "EventError",
    "TopicSpec",
    "build_event",
    "dlq_topic",
    "parse_event",
    "topic_name",
]
