"""The bank's REST API: units, stock, thresholds; bank staff only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from inventory.din import check_character
from inventory.models import StockThreshold, Unit, UnitStatus
from shared_events.demo import demo_password
from shared_events.enums import UnitAttribute

pytestmark = pytest.mark.django_db

DIN = "A999926123456"


def receive_body(**overrides) -> dict:
    collected_at = datetime.now(UTC) - timedelta(days=1)
    return {
        "din": DIN + check_character(DIN),
        "component": "RED_CELLS",
        "blood_group": "A+",
        "volume_ml": 280,
        "collected_at": collected_at.isoformat(),
        "expires_at": (collected_at + timedelta(days=35)).isoformat(),
        "batch": "LOT-7",
    } | overrides


def test_anonymous_callers_get_401_and_non_bank_users_403(outsider_client):
    assert APIClient().get("/api/v1/units/").status_code == 401
    for path in ["/api/v1/units/", "/api/v1/stock/", "/api/v1/thresholds/", "/api/v1/requests/"]:
        assert outsider_client.get(path).status_code == 403, path


def test_receiving_a_unit_validates_the_din_check_character(bank_client):
    response = bank_client.post("/api/v1/units/", receive_body(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["din"] == DIN and body["status"] == "AVAILABLE" and body["allocated_to"] is None
    # The label's expiry, not the product's default shelf life (42 days).
    assert datetime.fromisoformat(body["expires_at"]) - datetime.fromisoformat(body["collected_at"]) == timedelta(
        days=35
    )
    assert (body["product_code"], body["division"], body["component"]) == ("E0398V00", "00", "RED_CELLS")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"din": DIN + "Q"}, "din"),
        ({"din": "12345"}, "din"),
        ({"blood_group": "C+"}, "blood_group"),
        ({"component": "SERUM"}, "component"),
        ({"volume_ml": 0}, "volume_ml"),
        ({"expires_at": (datetime.now(UTC) - timedelta(days=3)).isoformat()}, "expires_at"),
        # An attack on stock: a unit that expires in 2099, or one already expired on receipt.
        ({"expires_at": "2099-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}, "expires_at"),
        ({"component": "PLATELETS", "expires_at": (datetime.now(UTC) + timedelta(days=7)).isoformat()}, "expires_at"),
        ({"collected_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}, "collected_at"),
        # The label's expiry is required; before or at collection it is refused.
        ({"expires_at": None}, "expires_at"),
        ({"collected_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(), "expires_at": None}, "expires_at"),
        ({"collected_at": "2026-01-02T10:00:00Z", "expires_at": "2026-01-02T10:00:00Z"}, "expires_at"),
        ({"collected_at": "2026-01-02T10:00:00Z", "expires_at": "2026-01-01T10:00:00Z"}, "expires_at"),
    ],
)
def test_bad_unit_input_is_a_400_with_field_errors_and_changes_nothing(bank_client, overrides, field):
    response = bank_client.post("/api/v1/units/", receive_body(**overrides), format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Unit.objects.exists()


def test_a_duplicate_din_product_code_and_division_is_refused(bank_client):
    assert bank_client.post("/api/v1/units/", receive_body(), format="json").status_code == 201
    response = bank_client.post("/api/v1/units/", receive_body(product_code="E0398V00"), format="json")
    assert response.status_code == 400
    assert response.json() == {
        "din": [f"a unit with DIN {DIN}, product code E0398V00 and division 00 is already recorded"]
    }
    assert Unit.objects.count() == 1


def test_units_can_be_filtered(bank_client, unit_factory):
    now = datetime.now(UTC)
    unit_factory(blood_group="A+", batch="L1", expires_at=now + timedelta(days=2))
    unit_factory(blood_group="B+", batch="L2", expires_at=now + timedelta(days=20))
    unit_factory(blood_group="B+", batch="L2", status=UnitStatus.QUARANTINED)
    assert bank_client.get("/api/v1/units/?blood_group=B%2B").json()["count"] == 2
    assert bank_client.get("/api/v1/units/?status=QUARANTINED").json()["count"] == 1
    assert bank_client.get("/api/v1/units/?batch=L1").json()["count"] == 1
    before = (now + timedelta(days=5)).isoformat().replace("+00:00", "Z")
    assert bank_client.get("/api/v1/units/", {"expires_before": before}).json()["count"] == 1
    assert bank_client.get("/api/v1/units/?status=NOPE").status_code == 400


def test_quarantine_release_discard_with_a_reason_and_409_on_an_allocated_unit(bank_client, unit_factory):
    unit = unit_factory()
    url = f"/api/v1/units/{unit.pk}"
    assert bank_client.post(f"{url}/quarantine/", {}, format="json").status_code == 400
    response = bank_client.post(f"{url}/quarantine/", {"reason": "visual check"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "QUARANTINED"
    assert response.json()["history"][-1]["by"] == "bank_clerk"
    assert bank_client.post(f"{url}/release/", {"reason": "fine"}, format="json").json()["status"] == "AVAILABLE"
    assert bank_client.post(f"{url}/discard/", {"reason": "broken"}, format="json").status_code == 400  # a code
    assert bank_client.post(f"{url}/discard/", {"reason": "DAMAGED"}, format="json").json()["status"] == "DISCARDED"
    allocated = unit_factory(status=UnitStatus.ALLOCATED)
    response = bank_client.post(f"/api/v1/units/{allocated.pk}/discard/", {"reason": "DAMAGED"}, format="json")
    assert response.status_code == 409
    assert bank_client.get("/api/v1/units/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_the_stock_lists_every_component_and_group_with_levels(bank_client, unit_factory):
    now = datetime.now(UTC)
    unit_factory.create_batch(3, blood_group="O-", expires_at=now + timedelta(hours=30))
    unit_factory(blood_group="O-", status=UnitStatus.ALLOCATED)
    rows = bank_client.get("/api/v1/stock/").json()
    assert len(rows) == 40
    row = next(r for r in rows if (r["component"], r["blood_group"]) == ("RED_CELLS", "O-"))
    assert row == {
        "component": "RED_CELLS",
        "blood_group": "O-",
        "available_units": 3,
        "allocated_units": 1,
        "expiring_within_72h": 3,
        "days_of_supply": None,
        "low_threshold": 10,
        "critical_threshold": 4,
        "low_days": None,
        "critical_days": None,
        "level": "CRITICAL",
        "by_attribute": {attribute: 0 for attribute in UnitAttribute},
    }


def test_thresholds_can_be_read_and_changed_and_bad_ones_are_refused(bank_client):
    rows = bank_client.get("/api/v1/thresholds/").json()
    assert len(rows) == 40
    change = [{"component": "PLASMA", "blood_group": "AB+", "low_threshold": 7, "critical_threshold": 3}]
    response = bank_client.put("/api/v1/thresholds/", change, format="json")
    assert response.status_code == 200
    assert StockThreshold.objects.get(component="PLASMA", blood_group="AB+").low_threshold == 7
    bad = [{"component": "PLASMA", "blood_group": "AB+", "low_threshold": 2, "critical_threshold": 3}]
    assert bank_client.put("/api/v1/thresholds/", bad, format="json").status_code == 400
    assert StockThreshold.objects.get(component="PLASMA", blood_group="AB+").low_threshold == 7


def test_a_bank_staff_member_logs_in_with_a_token(db):
    from django.core.management import call_command

    call_command("seed_demo")
    token = APIClient().post(
        "/api/v1/auth/token/", {"username": "bank_admin", "password": demo_password()}, format="json"
    )
    assert token.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    assert client.get("/api/v1/stock/").status_code == 200
    assert APIClient().get("/healthz").status_code == 200
    assert APIClient().get("/api/schema/").status_code == 200
