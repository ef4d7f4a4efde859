"""Events the bank consumes; each handler calls one service (the consumer runner owns the rest)."""

from __future__ import annotations

from traceability.handlers import HANDLERS as TRACEABILITY_HANDLERS

from allocation import services
from shared_events import topics
from shared_events.envelope import Event


def handle_blood_requested(event: Event) -> None:
    services.receive_blood_request(request=event.data, correlation_id=event.correlation_id)


def handle_blood_cancelled(event: Event) -> None:
    services.cancel_blood_request(cancel=event.data, correlation_id=event.correlation_id)


def handle_mtp_pack_requested(event: Event) -> None:
    services.request_mtp_pack(data=event.data)


def handle_mtp_stopped(event: Event) -> None:
    services.stop_mtp(data=event.data)


HANDLERS = {
    topics.REQUESTED: handle_blood_requested,
    topics.CANCELLED: handle_blood_cancelled,
    topics.MTP_PACK_REQUESTED: handle_mtp_pack_requested,
    topics.MTP_STOPPED: handle_mtp_stopped,
    **TRACEABILITY_HANDLERS,
}
