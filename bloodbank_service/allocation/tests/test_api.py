"""The bank's requests over REST: decisions and allocations, read-only."""

from __future__ import annotations

import pytest
from conftest import make_event
from django.db import transaction

from allocation.handlers import HANDLERS
from shared_events import topics
from shared_events.testing import requested_payload

pytestmark = pytest.mark.django_db


def test_requests_show_their_decision_and_allocations(bank_client, unit_factory):
    units = unit_factory.create_batch(2, blood_group="A+")
    payload = requested_payload(blood_group="A+", units=2, patient_reference="MRN-opaque-17", group_confirmed=True)
    with transaction.atomic():
        HANDLERS[topics.REQUESTED](make_event(topics.REQUESTED, payload))
    listing = bank_client.get("/api/v1/requests/?status=APPROVED").json()
    assert listing["count"] == 1
    detail = bank_client.get(f"/api/v1/requests/{payload['request_id']}/").json()
    assert detail["status"] == "APPROVED" and detail["decision"]["units_allocated"] == 2
    assert {a["din"] for a in detail["allocations"]} == {u.din for u in units}
    assert detail["patient_reference"] == "MRN-opaque-17"
    assert (detail["protocol"], detail["group_confirmed"], detail["uncrossmatched"], detail["packs"]) == (
        "STANDARD",
        True,
        False,
        [],
    )
    assert {(a["product_code"], a["division"], a["pack"]) for a in detail["allocations"]} == {("E0398V00", "00", None)}
    assert bank_client.get("/api/v1/requests/?status=REJECTED").json()["count"] == 0
    assert bank_client.post("/api/v1/requests/", {}, format="json").status_code == 405


def test_a_waiting_request_has_no_decision_yet(bank_client):
    payload = requested_payload(priority="SCHEDULED")
    with transaction.atomic():
        HANDLERS[topics.REQUESTED](make_event(topics.REQUESTED, payload))
    detail = bank_client.get(f"/api/v1/requests/{payload['request_id']}/").json()
    assert detail["status"] == "WAITING" and detail["decision"] is None


def test_an_mtp_request_shows_its_packs_and_which_pack_each_unit_is_for(bank_client, unit_factory):
    unit_factory.create_batch(4, blood_group="O-")
    unit_factory.create_batch(4, component="PLASMA", blood_group="AB+", special_attributes=["LEUKOREDUCED"])
    payload = requested_payload(protocol="MTP", blood_group="UNKNOWN", authorised_by="dr_khan")
    del payload["component"], payload["units"]
    with transaction.atomic():
        HANDLERS[topics.REQUESTED](make_event(topics.REQUESTED, payload))
    assert bank_client.get("/api/v1/requests/?protocol=MTP&blood_group=UNKNOWN").json()["count"] == 1
    detail = bank_client.get(f"/api/v1/requests/{payload['request_id']}/").json()
    assert (detail["status"], detail["protocol"], detail["uncrossmatched"]) == ("MTP_ACTIVE", "MTP", True)
    assert detail["authorised_by"] == "dr_khan" and detail["component"] == ""
    (pack,) = detail["packs"]
    assert (pack["number"], pack["status"], pack["units_allocated"]) == (1, "APPROVED", 8)
    assert {a["pack"] for a in detail["allocations"]} == {1}
    assert {tuple(a["special_attributes"]) for a in detail["allocations"] if a["component"] == "PLASMA"} == {
        ("LEUKOREDUCED",)
    }
