"""Helpers of the traceability tests: an approved request, hospital events as the consumer hands them over."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from allocation.models import BankRequest
from allocation.services import receive_blood_request
from inventory.models import Unit

from shared_events.django.models import OutboxEvent
from shared_events.envelope import Event, build_event, parse_event
from shared_events.schemas import BloodRequestedV2
from shared_events.testing import requested_payload


def approved_request(*, units: int = 2, component: str = "RED_CELLS", group: str = "O+", **extra: Any) -> BankRequest:
    """An approved request; the group is confirmed unless ``group_confirmed=False`` is given."""
    payload = requested_payload(
        units=units, component=component, blood_group=group, **({"group_confirmed": True} | extra)
    )
    bank_request = receive_blood_request(request=BloodRequestedV2.model_validate(payload))
    assert bank_request.status in ("APPROVED", "PARTIALLY_APPROVED"), bank_request.detail
    return bank_request


def units_of(bank_request: BankRequest) -> list[Unit]:
    return list(Unit.objects.filter(allocations__request=bank_request).order_by("din"))


def hospital_event(event_type: str, payload: dict[str, Any], subject: str) -> Event:
    return parse_event(build_event(event_type, payload, source="hospital-service", subject=subject).to_bytes())


def entry(unit: Unit) -> dict[str, Any]:
    return {
        "unit_id": str(unit.pk),
        "din": unit.din,
        "component": unit.component,
        "blood_group": unit.blood_group,
        "expires_at": unit.expires_at.isoformat(),
    }


def fate_payload(bank_request: BankRequest, unit: Unit, fate: str, **fields: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    base: dict[str, Any] = {
        "request_id": str(bank_request.request_id),
        "hospital_id": str(bank_request.hospital_id),
        "unit": entry(unit),
        "fate": fate,
        "recorded_by": "stmary_staff",
        "recorded_at": now.isoformat(),
    }
    if fate == "TRANSFUSED":
        base |= {"patient_reference": "MRN-4411", "started_at": now.isoformat()}
    elif fate == "WASTED":
        base |= {"reason": "DAMAGED"}
    else:
        base |= {
            "left_storage_at": (now - timedelta(minutes=10)).isoformat(),
            "returned_at": now.isoformat(),
            "cold_chain_intact": True,
        }
    return base | fields


def published(event_type: str) -> list[dict[str, Any]]:
    """The payloads of ``event_type`` written to this service's outbox, oldest first."""
    return [
        parse_event(bytes(row.value)).envelope.data
        for row in OutboxEvent.objects.filter(event_type=event_type).order_by("id")
    ]


def new_id() -> str:
    return str(uuid.uuid4())
