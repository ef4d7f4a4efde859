"""Events in: every request and stock event becomes notifications (the consumer runner owns Kafka)."""

from __future__ import annotations

from notifications.rules import NOTIFIED_EVENT_TYPES
from notifications.services import notify_for_event
from shared_events.envelope import Event


def handle_event(event: Event) -> None:
    notify_for_event(event=event)


HANDLERS = {event_type: handle_event for event_type in NOTIFIED_EVENT_TYPES}
