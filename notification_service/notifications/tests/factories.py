"""Factories: users with an audience, and real events (built, serialised and parsed back)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import factory
from django.contrib.auth import get_user_model

from notifications.services import register_recipient
from shared_events import topics
from shared_events.demo import BANK_AUDIENCE, HOSPITALS
from shared_events.envelope import Event, build_event, parse_event

ST_MARY, CITY_GENERAL = HOSPITALS
ABSENT = object()  # leave the field out of the payload
SOURCES = {"hospital": "hospital-service", "bloodbank": "bloodbank-service"}


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests")


def recipient_user(audience: str, **kwargs: Any):
    user = UserFactory(**kwargs)
    register_recipient(user=user, audience=audience)
    return user


def hospital_user(hospital=ST_MARY):
    return recipient_user(hospital.audience, username=hospital.username)


def bank_user():
    return recipient_user(BANK_AUDIENCE, username="bank_admin", is_staff=True)


def make_event(
    event_type: str,
    data: dict[str, Any],
    *,
    subject: str,
    event_id: uuid.UUID | None = None,
    major: int | None = None,
) -> Event:
    """A real event as the consumer hands it to a handler: built, serialised to bytes, parsed.

    ``major``: as an older producer sends it (the latest major otherwise)."""
    source = SOURCES[event_type.split(".", 1)[0]]
    envelope = build_event(event_type, data, source=source, subject=subject, event_id=event_id)
    if major is not None:
        envelope = envelope.model_copy(update={"dataschema": topics.TOPICS[event_type].dataschema(major)})
    return parse_event(envelope.to_bytes())


def now() -> datetime:
    return datetime.now(UTC)


def requested(
    *,
    request_id: uuid.UUID | None = None,
    hospital=ST_MARY,
    priority: str = "EMERGENCY",
    major: int | None = None,
    **overrides: Any,
) -> Event:
    request_id = request_id or uuid.uuid4()
    data = {
        "request_id": str(request_id),
        "hospital_id": str(hospital.id),
        "hospital_name": hospital.name,
        "blood_group": "O+",
        "component": "RED_CELLS",
        "units": 2,
        "priority": priority,
        "needed_by": (now() + timedelta(days=2)).isoformat() if priority == "SCHEDULED" else None,
        "allow_partial": priority == "EMERGENCY",
        "patient_reference": "PT-0042",
        "indication": "TRAUMA",
        "requested_by": hospital.username,
        "requested_at": now().isoformat(),
    } | overrides
    data = {key: value for key, value in data.items() if value is not ABSENT}
    return make_event(topics.REQUESTED, data, subject=str(request_id), major=major)


def mtp_requested(*, request_id: uuid.UUID | None = None, hospital=ST_MARY, **overrides: Any) -> Event:
    """``hospital.blood.requested`` v2 of an MTP: no component or units."""
    return requested(
        request_id=request_id,
        hospital=hospital,
        protocol="MTP",
        component=ABSENT,
        units=ABSENT,
        authorised_by="Dr Okafor",
        **overrides,
    )


def allocation(*, group: str = "O+", component: str = "RED_CELLS", days: int = 20) -> dict[str, Any]:
    return {
        "unit_id": str(uuid.uuid4()),
        "din": "A999926123456",
        "component": component,
        "blood_group": group,
        "expires_at": (now() + timedelta(days=days)).isoformat(),
        "batch": "B-1",
    }


def approved(
    *,
    request_id: uuid.UUID,
    hospital=ST_MARY,
    groups=("O+", "O+"),
    requested_units: int = 2,
    allocations: list[dict[str, Any]] | None = None,
    pack: int | None = None,
    uncrossmatched: bool = False,
) -> Event:
    allocations = allocations if allocations is not None else [allocation(group=g) for g in groups]
    data = {
        "request_id": str(request_id),
        "hospital_id": str(hospital.id),
        "units_requested": requested_units,
        "units_allocated": len(allocations),
        "partial": len(allocations) < requested_units,
        "allocations": allocations,
        "decided_at": now().isoformat(),
        "pack": pack,
        "uncrossmatched": uncrossmatched,
    }
    return make_event(topics.APPROVED, data, subject=str(request_id))


def mtp_pack(*, red_cells: int = 4, plasma: int = 4, platelets: int = 0) -> list[dict[str, Any]]:
    return (
        [allocation(group="O-") for _ in range(red_cells)]
        + [allocation(group="AB+", component="PLASMA") for _ in range(plasma)]
        + [allocation(group="A+", component="PLATELETS", days=4) for _ in range(platelets)]
    )


def rejected(
    *,
    request_id: uuid.UUID,
    hospital=ST_MARY,
    reason_code: str = "INSUFFICIENT_STOCK",
    pack: int | None = None,
    major: int | None = None,
) -> Event:
    data = {
        "request_id": str(request_id),
        "hospital_id": str(hospital.id),
        "reason_code": reason_code,
        "detail": "0 of 2 units available",
        "decided_at": now().isoformat(),
    } | ({"pack": pack} if pack is not None else {})
    return make_event(topics.REJECTED, data, subject=str(request_id), major=major)


def pack_requested(*, request_id: uuid.UUID, pack: int, hospital=ST_MARY) -> Event:
    data = {
        "request_id": str(request_id),
        "hospital_id": str(hospital.id),
        "pack": pack,
        "requested_by": hospital.username,
        "requested_at": now().isoformat(),
    }
    return make_event(topics.MTP_PACK_REQUESTED, data, subject=str(request_id))


def mtp_stopped(*, request_id: uuid.UUID, hospital=ST_MARY) -> Event:
    data = {
        "request_id": str(request_id),
        "hospital_id": str(hospital.id),
        "stopped_by": hospital.username,
        "stopped_at": now().isoformat(),
    }
    return make_event(topics.MTP_STOPPED, data, subject=str(request_id))


def cancelled(*, request_id: uuid.UUID, hospital=ST_MARY) -> Event:
    data = {
        "request_id": str(request_id),
        "hospital_id": str(hospital.id),
        "reason_code": "NOT_REQUIRED",
        "cancelled_by": hospital.username,
        "cancelled_at": now().isoformat(),
    }
    return make_event(topics.CANCELLED, data, subject=str(request_id))


def released(*, request_id: uuid.UUID, hospital=ST_MARY, units: int = 2) -> Event:
    data = {
        "request_id": str(request_id),
        "hospital_id": str(hospital.id),
        "unit_ids": [str(uuid.uuid4()) for _ in range(units)],
        "reason": "CANCELLED",
        "released_at": now().isoformat(),
    }
    return make_event(topics.RELEASED, data, subject=str(request_id))


def inventory_updated(
    *, available: int, group: str = "O+", component: str = "RED_CELLS", level: str = "OK", as_of: datetime | None = None
) -> Event:
    data = {
        "component": component,
        "blood_group": group,
        "available_units": available,
        "expiring_within_72h": 1,
        "level": level,
        "as_of": (as_of or now()).isoformat(),
    }
    return make_event(topics.INVENTORY_UPDATED, data, subject=f"{component}:{group}")


def low_stock(*, level: str, available: int, group: str = "O+", component: str = "RED_CELLS") -> Event:
    data = {
        "component": component,
        "blood_group": group,
        "level": level,
        "available_units": available,
        "low_threshold": 20,
        "critical_threshold": 8,
        "as_of": now().isoformat(),
    }
    return make_event(topics.LOW_STOCK, data, subject=f"{component}:{group}")
