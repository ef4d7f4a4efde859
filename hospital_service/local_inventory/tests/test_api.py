"""Hospital-local units: list, transfuse, discard, summary, expiry, tenancy."""

from datetime import timedelta

import pytest
from django.utils import timezone
from testing_support.factories import LocalUnitFactory, make_request

from local_inventory.models import LocalUnit
from local_inventory.services import expire_local_units

pytestmark = pytest.mark.django_db

UNITS = "/api/v1/inventory/units/"


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


def test_a_transfusion_is_recorded_once(api, unit, staff):
    response = api.post(f"{UNITS}{unit.id}/transfuse/", {"reason": "theatre 2"}, format="json")

    assert response.status_code == 200
    assert response.data["status"] == "TRANSFUSED"
    assert response.data["status_changed_by"] == "stmary_staff"
    assert api.post(f"{UNITS}{unit.id}/transfuse/", {}, format="json").status_code == 409
    assert api.post(f"{UNITS}{unit.id}/discard/", {"reason": "x"}, format="json").status_code == 409


def test_a_discard_needs_a_reason(api, unit):
    assert api.post(f"{UNITS}{unit.id}/discard/", {}, format="json").status_code == 400
    unit.refresh_from_db()
    assert unit.status == "AVAILABLE"

    response = api.post(f"{UNITS}{unit.id}/discard/", {"reason": "bag damaged"}, format="json")
    assert response.status_code == 200
    assert (response.data["status"], response.data["status_reason"]) == ("DISCARDED", "bag damaged")


def test_an_expired_unit_cannot_be_transfused(api, hospital, source):
    stale = LocalUnitFactory(hospital=hospital, source_request=source, expires_at=timezone.now() - timedelta(minutes=1))

    assert api.post(f"{UNITS}{stale.id}/transfuse/", {}, format="json").status_code == 409
    stale.refresh_from_db()
    assert stale.status == "AVAILABLE"


def test_the_local_expiry_sweep_expires_only_available_units_past_expiry(hospital, source):
    past = LocalUnitFactory(hospital=hospital, source_request=source, expires_at=timezone.now() - timedelta(hours=1))
    used = LocalUnitFactory(
        hospital=hospital, source_request=source, expires_at=timezone.now() - timedelta(hours=1), status="TRANSFUSED"
    )
    fresh = LocalUnitFactory(hospital=hospital, source_request=source)

    assert expire_local_units() == 1
    statuses = dict(LocalUnit.objects.values_list("id", "status"))
    assert statuses == {past.id: "EXPIRED", used.id: "TRANSFUSED", fresh.id: "AVAILABLE"}
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
    assert other_api.post(f"{UNITS}{unit.id}/transfuse/", {}, format="json").status_code == 404
    assert other_api.post(f"{UNITS}{unit.id}/discard/", {"reason": "x"}, format="json").status_code == 404
    assert other_api.get("/api/v1/inventory/summary/").data == []
    unit.refresh_from_db()
    assert unit.status == "AVAILABLE"


def test_outsiders_get_403(outsider_api, unit):
    assert outsider_api.get(UNITS).status_code == 403
    assert outsider_api.get("/api/v1/inventory/summary/").status_code == 403
