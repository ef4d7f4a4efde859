"""Dispatch per MTP pack (transfusion.md section 7) and the product identity in the dispatched event."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from allocation.handlers import HANDLERS
from allocation.models import BankRequest
from conftest import make_event
from django.contrib.admin.sites import site
from django.contrib.messages.storage.fallback import FallbackStorage
from django.db import transaction
from django.test import RequestFactory
from inventory.models import Unit, UnitStatus

from shared_events import topics
from shared_events.testing import requested_payload
from traceability import services
from traceability.models import Dispatch
from traceability.tests.support import approved_request, hospital_event, published

pytestmark = pytest.mark.django_db


def handle(event_type: str, payload: dict) -> None:
    with transaction.atomic():
        HANDLERS[event_type](make_event(event_type, payload))


@pytest.fixture
def mtp(unit_factory) -> dict:
    """An MTP request of unknown group with packs 1 and 2 approved."""
    unit_factory.create_batch(8, blood_group="O-", special_attributes=["LEUKOREDUCED"])
    unit_factory.create_batch(8, component="PLASMA", blood_group="AB-")
    unit_factory(component="PLATELETS", blood_group="O-", product_code="E3087V00")
    payload = requested_payload(protocol="MTP", blood_group="UNKNOWN", authorised_by="dr_khan")
    del payload["component"], payload["units"]
    handle(topics.REQUESTED, payload)
    handle(
        topics.MTP_PACK_REQUESTED,
        {
            "request_id": payload["request_id"],
            "hospital_id": payload["hospital_id"],
            "pack": 2,
            "requested_by": "stmary_staff",
            "requested_at": datetime.now(UTC).isoformat(),
        },
    )
    return payload


def test_an_mtp_request_is_dispatched_pack_by_pack_oldest_first(bank_client, mtp):
    url = f"/api/v1/requests/{mtp['request_id']}/dispatch/"
    first = bank_client.post(url, {"courier": "bike 3"}, format="json")
    assert first.status_code == 201, first.data
    assert first.data["pack"] == 1 and len(first.data["units"]) == 8
    second = bank_client.post(url, {}, format="json")
    assert second.data["pack"] == 2 and len(second.data["units"]) == 9
    assert bank_client.post(url, {}, format="json").status_code == 409
    assert bank_client.post(url, {"pack": 1}, format="json").status_code == 409  # already sent
    events = published(topics.UNITS_DISPATCHED)
    assert [e["pack"] for e in events] == [1, 2]
    red = next(u for u in events[0]["units"] if u["component"] == "RED_CELLS")
    assert (red["product_code"], red["division"], red["special_attributes"]) == ("E0398V00", "00", ["LEUKOREDUCED"])
    assert set(Dispatch.objects.values_list("pack", flat=True)) == {1, 2}


def test_a_chosen_pack_is_dispatched_alone(bank_client, mtp):
    response = bank_client.post(f"/api/v1/requests/{mtp['request_id']}/dispatch/", {"pack": 2}, format="json")
    assert response.status_code == 201 and response.data["pack"] == 2
    still_allocated = Unit.objects.filter(status=UnitStatus.ALLOCATED, allocations__pack=1).count()
    assert still_allocated == 8
    assert (
        bank_client.post(f"/api/v1/requests/{mtp['request_id']}/dispatch/", {"pack": 7}, format="json").status_code
        == 409
    )


def test_a_pack_on_a_standard_request_is_a_400_and_changes_nothing(bank_client, unit_factory):
    unit_factory.create_batch(2)
    bank_request = approved_request(units=2)
    response = bank_client.post(f"/api/v1/requests/{bank_request.request_id}/dispatch/", {"pack": 1}, format="json")
    assert response.status_code == 400 and "pack" in response.data
    assert not Dispatch.objects.exists()
    ok = bank_client.post(f"/api/v1/requests/{bank_request.request_id}/dispatch/", {}, format="json")
    assert ok.status_code == 201 and ok.data["pack"] is None
    assert published(topics.UNITS_DISPATCHED)[0]["pack"] is None


def test_a_received_pack_is_matched_to_its_own_dispatch(mtp):
    services.dispatch_request(request_id=mtp["request_id"], by="bank_clerk", pack=2)
    dispatch = services.dispatch_request(request_id=mtp["request_id"], by="bank_clerk", pack=1)
    services.record_receipt(
        data=hospital_event(
            topics.UNITS_RECEIVED,
            {
                "request_id": mtp["request_id"],
                "hospital_id": mtp["hospital_id"],
                "pack": 1,
                "dins": sorted(dispatch.units.values_list("din", flat=True)),
                "received_by": "stmary_staff",
                "received_at": datetime.now(UTC).isoformat(),
            },
            mtp["request_id"],
        ).data
    )
    received = dict(Dispatch.objects.values_list("pack", "received_by"))
    assert received == {1: "stmary_staff", 2: ""}


def test_the_admin_action_dispatches_the_oldest_pack(mtp, bank_user):
    bank_user.is_staff = bank_user.is_superuser = True
    bank_user.save()
    request = RequestFactory().post("/admin/allocation/bankrequest/")
    request.user = bank_user
    request.session = {}
    request._messages = FallbackStorage(request)
    model_admin = site._registry[BankRequest]
    model_admin.dispatch_selected(request, BankRequest.objects.filter(pk=mtp["request_id"]))
    assert list(Dispatch.objects.values_list("pack", flat=True)) == [1]
    assert "MTP pack 1" in next(iter(request._messages)).message


def test_the_admin_shows_an_mtp_requests_packs(client, mtp, bank_user):
    bank_user.is_staff = bank_user.is_superuser = True
    bank_user.save()
    client.force_login(bank_user)
    page = client.get(f"/admin/allocation/bankrequest/{mtp['request_id']}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "MTP packs" in html and "pack 2: 9 of 9 units allocated" in html
    assert "E0398V00 / 00" in html and "LEUKOREDUCED" in html
