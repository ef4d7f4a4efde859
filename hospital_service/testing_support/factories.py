"""factory_boy factories and event builders for the hospital's tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import factory
from bank_stock.models import BankStock
from blood_requests import services
from blood_requests.models import BloodRequest
from django.contrib.auth import get_user_model
from django.utils import timezone
from hospitals.models import Hospital, StaffMembership
from local_inventory.models import LocalUnit

from shared_events import topics
from shared_events.envelope import Event, build_event, parse_event
from shared_events.topics import TOPICS


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests")


class HospitalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Hospital
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Hospital {n}")


class StaffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StaffMembership

    user = factory.SubFactory(UserFactory, username=factory.SelfAttribute("..username"))
    hospital = factory.SubFactory(HospitalFactory)

    class Params:
        username = factory.Sequence(lambda n: f"staff{n}")


def make_request(*, hospital: Hospital, user: Any, **overrides: Any) -> BloodRequest:
    """A request created through the real service (so it has its history and outbox event)."""
    fields: dict[str, Any] = {
        "blood_group": "O+",
        "component": "RED_CELLS",
        "units": 2,
        "priority": "EMERGENCY",
    }
    fields.update(overrides)
    return services.create_blood_request(hospital=hospital, user=user, **fields)


PRODUCT_CODES = {
    "WHOLE_BLOOD": "E0010V00",
    "RED_CELLS": "E0398V00",
    "PLASMA": "E2555V00",
    "PLATELETS": "E3087V00",
    "CRYO": "E5165V00",
}


def allocation(
    *,
    blood_group: str = "O+",
    component: str = "RED_CELLS",
    days: int = 20,
    n: int = 0,
    special_attributes: list[str] | None = None,
    division: str = "00",
) -> dict[str, Any]:
    return {
        "unit_id": str(uuid.uuid4()),
        "din": f"A9999261{n:05d}",
        "product_code": PRODUCT_CODES[component][:6] + division,
        "division": division,
        "component": component,
        "blood_group": blood_group,
        "expires_at": (datetime.now(UTC) + timedelta(days=days)).isoformat(),
        "batch": "B-2026-11",
        "special_attributes": special_attributes if special_attributes is not None else ["LEUKOREDUCED"],
    }


def _event(event_type: str, data: dict[str, Any], subject: str, *, major: int | None = None) -> Event:
    raw = build_event(event_type, data, source="bloodbank-service", subject=subject, correlation_id=subject)
    if major is not None:  # an older producer's major (the payload must also be valid in it)
        raw = raw.model_copy(update={"dataschema": TOPICS[event_type].dataschema(major)})
    return parse_event(raw.to_bytes())


def approved_event(
    blood_request: BloodRequest,
    *,
    units: int | None = None,
    pack: int | None = None,
    allocations: list[dict[str, Any]] | None = None,
    units_requested: int | None = None,
    uncrossmatched: bool = False,
) -> Event:
    """``bloodbank.blood.approved``: ``units`` allocated of the request's (or an MTP pack's ``allocations``)."""
    if allocations is None:
        count = blood_request.units if units is None else units
        group = "O-" if blood_request.blood_group == "UNKNOWN" else blood_request.blood_group
        allocations = [allocation(blood_group=group, component=blood_request.component, n=i) for i in range(count)]
    requested = units_requested or blood_request.units or len(allocations)
    return _event(
        topics.APPROVED,
        {
            "request_id": str(blood_request.id),
            "hospital_id": str(blood_request.hospital_id),
            "units_requested": requested,
            "units_allocated": len(allocations),
            "partial": len(allocations) < requested,
            "allocations": allocations,
            "decided_at": timezone.now().isoformat(),
            "pack": pack,
            "uncrossmatched": uncrossmatched,
        },
        str(blood_request.id),
    )


UNIT_ENTRY_FIELDS = (
    "unit_id",
    "din",
    "product_code",
    "division",
    "component",
    "blood_group",
    "expires_at",
    "special_attributes",
)


def dispatched_event(
    blood_request: BloodRequest, units: list[dict[str, Any]] | None = None, *, pack: int | None = None
) -> Event:
    """``bloodbank.units.dispatched`` for the request: its allocated units not released (or ``units``)."""
    released = {str(unit_id) for unit_id in blood_request.released_unit_ids}
    units = units if units is not None else [a for a in blood_request.allocations if str(a["unit_id"]) not in released]
    return _event(
        topics.UNITS_DISPATCHED,
        {
            "request_id": str(blood_request.id),
            "hospital_id": str(blood_request.hospital_id),
            "pack": pack,
            "units": [{key: a[key] for key in UNIT_ENTRY_FIELDS if key in a} for a in units],
            "dispatched_by": "bank_admin",
            "dispatched_at": timezone.now().isoformat(),
        },
        str(blood_request.id),
    )


def approve_and_dispatch(blood_request: BloodRequest, *, units: int | None = None) -> BloodRequest:
    """Apply the bank's approval and dispatch of the request (as the handlers would)."""
    approval = approved_event(blood_request, units=units)
    services.record_approval(data=approval.data, event_id=approval.id)
    blood_request.refresh_from_db()
    dispatch = dispatched_event(blood_request)
    services.record_dispatch(data=dispatch.data, event_id=dispatch.id)
    blood_request.refresh_from_db()
    return blood_request


def receive_all(blood_request: BloodRequest, *, user: Any) -> BloodRequest:
    """Approve, dispatch and receive the request by scanning every dispatched DIN."""
    if not blood_request.dispatched_units:
        blood_request = approve_and_dispatch(blood_request)
    return services.receive_blood_request(
        blood_request_id=blood_request.id,
        hospital=blood_request.hospital,
        user=user,
        dins=[unit["din"] for unit in blood_request.dispatched_units],
    )


def mtp_pack_allocations(*, pack: int, red_cells: int = 4, plasma: int = 4, platelets: int | None = None) -> list:
    """A pack as the bank composes it: red cells, plasma, and from pack 2 one platelet dose (DINs unique per pack)."""
    platelets = (1 if pack >= 2 else 0) if platelets is None else platelets
    base = pack * 100
    return (
        [allocation(blood_group="O-", component="RED_CELLS", n=base + i) for i in range(red_cells)]
        + [
            allocation(blood_group="AB+", component="PLASMA", n=base + 10 + i, special_attributes=[])
            for i in range(plasma)
        ]
        + [allocation(blood_group="A+", component="PLATELETS", n=base + 20 + i) for i in range(platelets)]
    )


def recall_event(
    *, recall_id: str, hospital_id: Any, units: list[dict[str, Any]], reason: str = "DONOR_INFECTION"
) -> Event:
    return _event(
        topics.RECALL_ISSUED,
        {
            "recall_id": recall_id,
            "reason": reason,
            "severity": "HIGH",
            "dins": sorted({unit["din"] for unit in units}),
            "hospitals": [{"hospital_id": str(hospital_id), "units": units}],
            "issued_by": "bank_admin",
            "issued_at": timezone.now().isoformat(),
        },
        recall_id,
    )


def rejected_event(
    blood_request: BloodRequest,
    *,
    reason_code: str = "INSUFFICIENT_STOCK",
    pack: int | None = None,
    major: int | None = None,
) -> Event:
    """``bloodbank.blood.rejected``, v2 (the latest) unless ``major`` = 1 (an older bank)."""
    data: dict[str, Any] = {
        "request_id": str(blood_request.id),
        "hospital_id": str(blood_request.hospital_id),
        "reason_code": reason_code,
        "detail": "not enough units",
        "decided_at": timezone.now().isoformat(),
    }
    if pack is not None:
        data["pack"] = pack
    return _event(topics.REJECTED, data, str(blood_request.id), major=major)


def released_event(blood_request: BloodRequest, unit_ids: list[str], *, reason: str = "CANCELLED") -> Event:
    return _event(
        topics.RELEASED,
        {
            "request_id": str(blood_request.id),
            "hospital_id": str(blood_request.hospital_id),
            "unit_ids": unit_ids,
            "reason": reason,
            "released_at": timezone.now().isoformat(),
        },
        str(blood_request.id),
    )


def inventory_event(
    *, component="RED_CELLS", blood_group="O-", available=12, level="OK", as_of=None, days_of_supply=None
) -> Event:
    as_of = as_of or timezone.now()
    return _event(
        topics.INVENTORY_UPDATED,
        {
            "component": component,
            "blood_group": blood_group,
            "available_units": available,
            "expiring_within_72h": 1,
            "level": level,
            "as_of": as_of.isoformat(),
            "days_of_supply": days_of_supply,
        },
        f"{component}:{blood_group}",
    )


def low_stock_event(*, component="RED_CELLS", blood_group="O-", level="LOW", available=3, as_of=None) -> Event:
    as_of = as_of or timezone.now()
    return _event(
        topics.LOW_STOCK,
        {
            "component": component,
            "blood_group": blood_group,
            "level": level,
            "available_units": available,
            "low_threshold": 10,
            "critical_threshold": 4,
            "as_of": as_of.isoformat(),
        },
        f"{component}:{blood_group}",
    )


class LocalUnitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LocalUnit

    bank_unit_id = factory.LazyFunction(uuid.uuid4)
    din = factory.Sequence(lambda n: f"A9999261{n:05d}")
    component = "RED_CELLS"
    blood_group = "O+"
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=10))
    batch = "B-1"


class BankStockFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BankStock

    component = "RED_CELLS"
    blood_group = "O-"
    available_units = 10
    level = "OK"
    as_of = factory.LazyFunction(timezone.now)
