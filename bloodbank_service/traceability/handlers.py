"""Traceability events the bank consumes; each calls one service (the consumer runner owns the rest)."""

from __future__ import annotations

from shared_events import topics
from shared_events.envelope import Event
from traceability import services


def handle_units_received(event: Event) -> None:
    services.record_receipt(data=event.data)


def handle_unit_fate(event: Event) -> None:
    services.record_fate(data=event.data, event_id=event.id)


def handle_recall_acknowledged(event: Event) -> None:
    services.record_recall_answer(data=event.data)


HANDLERS = {
    topics.UNITS_RECEIVED: handle_units_received,
    topics.UNIT_FATE: handle_unit_fate,
    topics.RECALL_ACKNOWLEDGED: handle_recall_acknowledged,
}
