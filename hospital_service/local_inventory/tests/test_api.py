"""Hospital-local units: the one final fate of each (transfuse, waste, return), summary, expiry, tenancy."""

from datetime import timedelta

import pytest
from django.utils import timezone
from testing_support.factories import LocalUnitFactory, make_request, receive_all

from local_inventory.models import LocalUnit
from local_inventory.services import expire_local_units
from shared_events import topics
from shared_events.django.models import OutboxEvent
from shared_events.envelope import parse_event

pytestmark = pytest.mark.django_db

UNITS = "/api/v1/inventory/units/"


def _fates() -> list:
    return [parse_event(bytes(row.value)) for row in OutboxEvent.objects.filter(event_type=topics.UNIT_FATE)]


def _transfusion(**fields) -> dict:
    return {"patient_reference": "MRN-4411", "started_at": timezone.now().isoformat()} | fields


@pytest.fixture
def source(hospital, staff):
    return make_request(hospital=hospital, user=staff)


@pytest.fixture
def unit(hospital, source):
    return LocalUnitFactory(hospital=hospital, source_request=source)


def test_units_are_listed_and_filtered(api, hospital, source):
    LocalUnitFactory(hospital=hospital, source_request=source, blood_group="A+")
    LocalUnitFactory(hospital=hospital, source_request=source, blood_group="O-", component="PLASMA")

    assert api.get(UNITS).data["count"] == 2
    assert [u["blood_group"] for u in api.get(UNITS, {"component": "PLASMA"}).data["results"]] == ["O-"]
    assert api.get(UNITS, {"blood_group": "A+"}).data["count"] == 1
    assert api.get(UNITS, {"status": "TRANSFUSED"}).data["count"] == 0


def test_a_transfusion_needs_the_recipient_and_goes_to_the_bank_once(api, unit, source):
    body = _transfusion(ended_at=(timezone.now() + timedelta(minutes=1)).isoformat(), adverse_reaction=True)
    response = api.post(f"{UNITS}{unit.id}/transfuse/", body, format="json")

    assert response.status_code == 200, response.data
    assert (response.data["status"], response.data["patient_reference"]) == ("TRANSFUSED", "MRN-4411")
    assert response.data["status_changed_by"] == "stmary_staff"
    [fate] = _fates()
    assert fate.subject == unit.din
    assert (fate.data.fate, fate.data.patient_reference, fate.data.adverse_reaction) == ("TRANSFUSED", "MRN-4411", True)
    assert fate.data.request_id == source.id and fate.data.unit.unit_id == unit.bank_unit_id

    again = api.post(f"{UNITS}{unit.id}/transfuse/", body, format="json")
    assert again.status_code == 200  # the same fate and fields: nothing new
    assert len(_fates()) == 1
    assert (
        api.post(f"{UNITS}{unit.id}/transfuse/", _transfusion(patient_reference="MRN-2"), format="json").status_code
        == 409
    )
    assert api.post(f"{UNITS}{unit.id}/discard/", {"reason": "DAMAGED"}, format="json").status_code == 409
    assert len(_fates()) == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"patient_reference": "John Smith", "started_at": "2026-01-01T10:00:00Z"},  # a name, not a reference
        {"patient_reference": "MRN-1"},
        _transfusion(started_at=(timezone.now() + timedelta(hours=1)).isoformat()),
        _transfusion(ended_at=(timezone.now() - timedelta(hours=1)).isoformat()),
    ],
)
def test_a_bad_transfusion_is_a_400_and_changes_nothing(api, unit, body):
    response = api.post(f"{UNITS}{unit.id}/transfuse/", body, format="json")
    assert response.status_code == 400
    unit.refresh_from_db()
    assert unit.status == "AVAILABLE"
    assert _fates() == []


def test_a_waste_needs_a_coded_reason_and_the_note_stays_here(api, unit):
    assert api.post(f"{UNITS}{unit.id}/discard/", {"reason": "bag damaged"}, format="json").status_code == 400
    assert api.post(f"{UNITS}{unit.id}/discard/", {"reason": "OTHER"}, format="json").status_code == 400

    response = api.post(f"{UNITS}{unit.id}/discard/", {"reason": "DAMAGED", "note": "torn port"}, format="json")
    assert response.status_code == 200
    assert (response.data["status"], response.data["waste_reason"]) == ("WASTED", "DAMAGED")
    [fate] = _fates()
    assert fate.data.reason == "DAMAGED"
    assert b"torn port" not in bytes(OutboxEvent.objects.get(event_type=topics.UNIT_FATE).value)


def test_a_return_carries_the_cold_chain_facts(api, unit):
    left = timezone.now() - timedelta(minutes=20)
    body = {"left_storage_at": left.isoformat(), "cold_chain_intact": True}
    response = api.post(f"{UNITS}{unit.id}/return/", body, format="json")
    assert response.status_code == 200, response.data
    assert response.data["status"] == "RETURNED"
    [fate] = _fates()
    assert (fate.data.fate, fate.data.cold_chain_intact, fate.data.left_storage_at) == ("RETURNED", True, left)
    bad = {
        "left_storage_at": left.isoformat(),
        "returned_at": (left - timedelta(minutes=1)).isoformat(),
        "cold_chain_intact": True,
    }
    other = LocalUnitFactory(hospital=unit.hospital, source_request=unit.source_request)
    assert api.post(f"{UNITS}{other.id}/return/", bad, format="json").status_code == 400


def test_a_return_sent_again_without_its_time_is_a_repeat_not_a_second_fate(api, unit):
    body = {"left_storage_at": (timezone.now() - timedelta(minutes=5)).isoformat(), "cold_chain_intact": True}
    first = api.post(f"{UNITS}{unit.id}/return/", body, format="json")
    again = api.post(f"{UNITS}{unit.id}/return/", body, format="json")  # a retry: returned_at defaults to now
    assert (first.status_code, again.status_code) == (200, 200), again.data
    assert again.data["returned_at"] == first.data["returned_at"]
    assert len(_fates()) == 1
    changed = body | {"cold_chain_intact": False}
    assert api.post(f"{UNITS}{unit.id}/return/", changed, format="json").status_code == 409
    assert len(_fates()) == 1


def test_a_quarantined_unit_is_never_transfused_but_may_be_wasted_or_returned(api, hospital, source):
    held = LocalUnitFactory(hospital=hospital, source_request=source, status="QUARANTINED")
    assert api.post(f"{UNITS}{held.id}/transfuse/", _transfusion(), format="json").status_code == 409
    assert api.post(f"{UNITS}{held.id}/discard/", {"reason": "RECALLED"}, format="json").status_code == 200


def test_an_expired_unit_cannot_be_transfused(api, hospital, source):
    stale = LocalUnitFactory(hospital=hospital, source_request=source, expires_at=timezone.now() - timedelta(minutes=1))

    assert api.post(f"{UNITS}{stale.id}/transfuse/", _transfusion(), format="json").status_code == 409
    stale.refresh_from_db()
    assert stale.status == "AVAILABLE"


def test_the_local_expiry_sweep_wastes_expired_units_and_tells_the_bank(hospital, source):
    past = LocalUnitFactory(hospital=hospital, source_request=source, expires_at=timezone.now() - timedelta(hours=1))
    used = LocalUnitFactory(
        hospital=hospital, source_request=source, expires_at=timezone.now() - timedelta(hours=1), status="TRANSFUSED"
    )
    fresh = LocalUnitFactory(hospital=hospital, source_request=source)

    assert expire_local_units() == 1
    statuses = dict(LocalUnit.objects.values_list("id", "status"))
    assert statuses == {past.id: "WASTED", used.id: "TRANSFUSED", fresh.id: "AVAILABLE"}
    [fate] = _fates()
    assert (fate.data.fate, fate.data.reason, fate.data.recorded_by) == ("WASTED", "EXPIRED", "system")
    assert expire_local_units() == 0


def test_the_summary_counts_by_component_and_group(api, hospital, source):
    LocalUnitFactory.create_batch(2, hospital=hospital, source_request=source, blood_group="O+")
    LocalUnitFactory(hospital=hospital, source_request=source, blood_group="O+", status="TRANSFUSED")
    LocalUnitFactory(
        hospital=hospital, source_request=source, blood_group="A-", expires_at=timezone.now() + timedelta(hours=5)
    )

    rows = {(r["component"], r["blood_group"]): r for r in api.get("/api/v1/inventory/summary/").data}

    assert rows[("RED_CELLS", "O+")]["available_units"] == 2
    assert rows[("RED_CELLS", "O+")]["transfused_units"] == 1
    assert rows[("RED_CELLS", "A-")]["expiring_within_72h"] == 1


def test_another_hospitals_units_are_invisible(api, other_api, unit):
    assert other_api.get(UNITS).data["count"] == 0
    assert other_api.get(f"{UNITS}{unit.id}/").status_code == 404
    assert other_api.post(f"{UNITS}{unit.id}/transfuse/", _transfusion(), format="json").status_code == 404
    assert other_api.post(f"{UNITS}{unit.id}/discard/", {"reason": "DAMAGED"}, format="json").status_code == 404
    assert other_api.post(f"{UNITS}{unit.id}/return/", {}, format="json").status_code == 404
    assert other_api.get("/api/v1/inventory/summary/").data == []
    unit.refresh_from_db()
    assert unit.status == "AVAILABLE"


def test_received_units_keep_their_isbt_product_identity_and_attributes(api, hospital, staff):
    blood_request = receive_all(make_request(hospital=hospital, user=staff, units=1), user=staff)

    (unit,) = api.get("/api/v1/inventory/units/", {"source_request": str(blood_request.id)}).data["results"]
    assert (unit["product_code"], unit["division"], unit["special_attributes"]) == ("E0398V00", "00", ["LEUKOREDUCED"])
    fate = api.post(f"/api/v1/inventory/units/{unit['id']}/discard/", {"reason": "DAMAGED"}, format="json")
    assert fate.status_code == 200
    (row,) = OutboxEvent.objects.filter(event_type="hospital.unit.fate")
    entry = parse_event(bytes(row.value)).data.unit
    assert (entry.product_code, entry.division, entry.special_attributes) == ("E0398V00", "00", ["LEUKOREDUCED"])
