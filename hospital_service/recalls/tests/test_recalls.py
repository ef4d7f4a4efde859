"""Recalls at the hospital: quarantine what is held, answer for every unit, answer again on each change."""

import uuid

import pytest
from blood_requests.handlers import HANDLERS
from django.utils import timezone
from local_inventory import services as unit_services
from local_inventory.models import LocalUnit
from testing_support.factories import approve_and_dispatch, make_request, recall_event, receive_all

from recalls.models import HospitalRecall
from shared_events import topics
from shared_events.django.models import OutboxEvent
from shared_events.envelope import parse_event

pytestmark = pytest.mark.django_db


def _answers() -> list:
    return [parse_event(bytes(r.value)).data for r in OutboxEvent.objects.filter(event_type=topics.RECALL_ACKNOWLEDGED)]


def _listed(blood_request, unit: dict, bank_status: str = "ISSUED") -> dict:
    return unit | {"request_id": str(blood_request.id), "bank_status": bank_status}


def test_a_recall_quarantines_held_units_and_answers_for_every_one(hospital, staff, api):
    held = receive_all(make_request(hospital=hospital, user=staff, units=2), user=staff)
    used, kept = LocalUnit.objects.filter(source_request=held).order_by("din")
    unit_services.transfuse_unit(
        unit_id=used.id, hospital=hospital, user=staff, patient_reference="MRN-77", started_at=timezone.now()
    )
    travelling = approve_and_dispatch(make_request(hospital=hospital, user=staff, units=1))
    recall_id = str(uuid.uuid4())
    units = [_listed(held, u) for u in held.dispatched_units] + [
        _listed(travelling, u) for u in travelling.dispatched_units
    ]

    event = recall_event(recall_id=recall_id, hospital_id=hospital.id, units=units)
    HANDLERS[topics.RECALL_ISSUED](event)
    HANDLERS[topics.RECALL_ISSUED](event)  # a repeat changes nothing

    kept.refresh_from_db()
    assert kept.status == "QUARANTINED"
    [answer] = _answers()
    states = {a.din: (a.state, a.patient_reference) for a in answer.units}
    assert states == {
        used.din: ("TRANSFUSED", "MRN-77"),
        kept.din: ("QUARANTINED_HERE", None),
        travelling.dispatched_units[0]["din"]: ("IN_TRANSIT", None),
    }
    transfuse = {"patient_reference": "MRN-1", "started_at": timezone.now().isoformat()}
    assert api.post(f"/api/v1/inventory/units/{kept.id}/transfuse/", transfuse, format="json").status_code == 409

    # Each later change is answered again: the unit in transit arrives (quarantined at once), the kept one is wasted.
    receive_all(travelling, user=staff)
    arrived = LocalUnit.objects.get(source_request=travelling)
    assert arrived.status == "QUARANTINED"
    unit_services.discard_unit(unit_id=kept.id, hospital=hospital, user=staff, reason="RECALLED")
    latest = _answers()[-1]
    assert {a.din: a.state for a in latest.units} == {
        used.din: "TRANSFUSED",
        kept.din: "WASTED",
        arrived.din: "QUARANTINED_HERE",
    }
    listed = api.get("/api/v1/recalls/").data["results"]
    assert [r["recall_id"] for r in listed] == [recall_id]
    assert {u["din"]: u["state"] for u in listed[0]["units"]}[kept.din] == "WASTED"


def test_a_recall_for_another_hospital_is_not_ours(hospital, other_hospital, other_api, staff):
    held = approve_and_dispatch(make_request(hospital=hospital, user=staff, units=1))
    HANDLERS[topics.RECALL_ISSUED](
        recall_event(
            recall_id=str(uuid.uuid4()),
            hospital_id=hospital.id,
            units=[_listed(held, u) for u in held.dispatched_units],
        )
    )
    assert HospitalRecall.objects.filter(hospital=hospital).count() == 1
    assert other_api.get("/api/v1/recalls/").data["count"] == 0
