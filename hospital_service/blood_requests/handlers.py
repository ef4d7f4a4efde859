"""Every event the hospital consumes, mapped to a thin handler (``SHARED_EVENTS["HANDLERS"]``).

Events for a request this database does not know are logged and ignored by the
services (raising would dead-letter them for nothing).
"""

from __future__ import annotations

from bank_stock.handlers import handle_inventory_updated, handle_low_stock
from recalls.services import record_recall

from blood_requests import services
from shared_events import topics
from shared_events.envelope import Event
from shared_events.schemas import rejected_v2


def handle_blood_approved(event: Event) -> None:
    services.record_approval(data=event.data, event_id=event.id)


def handle_blood_rejected(event: Event) -> None:
    services.record_rejection(data=rejected_v2(event.data), event_id=event.id)  # v1 or v2


def handle_allocation_released(event: Event) -> None:
    services.record_allocation_released(data=event.data, event_id=event.id)


def handle_units_dispatched(event: Event) -> None:
    services.record_dispatch(data=event.data, event_id=event.id)


def handle_recall_issued(event: Event) -> None:
    record_recall(data=event.data)


HANDLERS = {
    topics.UNITS_DISPATCHED: handle_units_dispatched,
    topics.RECALL_ISSUED: handle_recall_issued,
    topics.APPROVED: handle_blood_approved,
    topics.REJECTED: handle_blood_rejected,
    topics.RELEASED: handle_allocation_released,
    topics.INVENTORY_UPDATED: handle_inventory_updated,
    topics.LOW_STOCK: handle_low_stock,
}
