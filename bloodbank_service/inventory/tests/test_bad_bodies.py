"""Oversized and deeply nested request bodies are refused with a JSON error and change nothing."""

from datetime import UTC, datetime, timedelta

import pytest

from inventory.din import make_din
from inventory.models import Unit
from shared_events.testing import refused_bodies

URL = "/api/v1/units/"
VALID = {
    "din": make_din("G1234", 26, 42),
    "component": "RED_CELLS",
    "blood_group": "A-",
    "volume_ml": 280,
    "collected_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
    "expires_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
    "batch": "BATCH-7",
}

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("body", "status"), refused_bodies(VALID))
def test_a_body_too_large_or_too_deep_is_refused_and_creates_nothing(bank_client, body, status):
    response = bank_client.generic("POST", URL, body, content_type="application/json")

    assert response.status_code == status
    assert response.json()["detail"].startswith(("Request body too large", "JSON parse error - nested deeper"))
    assert not Unit.objects.exists()
    assert bank_client.post(URL, VALID, format="json").status_code == 201  # the same client, a sane body


@pytest.mark.parametrize(
    ("when", "status"),
    [
        ("0066-12-30T23:19:16+17:18", 200),  # an offset PostgreSQL refuses: compared in UTC
        ("0001-01-01T00:00:00+10:00", 400),  # before year 1 in UTC
        ("9999-12-31T23:59:59-10:00", 400),  # after year 9999 in UTC
    ],
)
def test_an_expires_before_filter_at_the_edge_of_time_is_answered_not_a_500(bank_client, when, status):
    response = bank_client.get("/api/v1/units/", {"expires_before": when})

    assert response.status_code == status
