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
