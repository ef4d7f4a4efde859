"""Fixtures shared by the bloodbank tests: factories for units and events, staff clients."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import factory
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from inventory.din import make_din
from inventory.models import Unit, UnitStatus
from inventory.permissions import BANK_STAFF_GROUP
from inventory.products import default_product_code
from rest_framework.test import APIClient

from shared_events.envelope import build_event, parse_event

_sequence = iter(range(1, 10**6))


class UnitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Unit

    din = factory.LazyFunction(lambda: make_din("T0001", 26, next(_sequence)))
    component = "RED_CELLS"
    blood_group = "O+"
    volume_ml = 280
    collected_at = factory.LazyFunction(lambda: datetime.now(UTC) - timedelta(days=5))
    expires_at = factory.LazyAttribute(lambda unit: unit.collected_at + timedelta(days=42))
    batch = "BATCH-1"
    status = UnitStatus.AVAILABLE
    # As every received unit has: its component's default code (division 00) unless a test says otherwise.
    product_code = factory.LazyAttribute(lambda unit: default_product_code(unit.component))


def cancelled_payload(request_id: str, hospital_id: str, **overrides) -> dict:
    return {
        "request_id": request_id,
        "hospital_id": hospital_id,
        "reason": "patient stable",
        "cancelled_by": "stmary_staff",
        "cancelled_at": datetime.now(UTC).isoformat(),
    } | overrides


def make_event(event_type: str, payload: dict):
    """A real event as the consumer would hand it to a handler."""
    event = build_event(event_type, payload, source="hospital-service", subject=payload["request_id"])
    return parse_event(event.to_bytes())


@pytest.fixture
def unit_factory():
    return UnitFactory


@pytest.fixture
def bank_user(db):
    user = get_user_model().objects.create_user(username="bank_clerk", password="pw-123456")  # noqa: S106
    user.groups.add(Group.objects.get_or_create(name=BANK_STAFF_GROUP)[0])
    return user


@pytest.fixture
def bank_client(bank_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(bank_user)
    return client


@pytest.fixture
def outsider_client(db) -> APIClient:
    user = get_user_model().objects.create_user(username="stmary_staff", password="pw-123456")  # noqa: S106
    client = APIClient()
    client.force_authenticate(user)
    return client
