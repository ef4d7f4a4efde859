"""Oversized and deeply nested request bodies are refused with a JSON error and change nothing."""

import pytest

from blood_requests.models import BloodRequest
from shared_events.testing import refused_bodies

URL = "/api/v1/blood-requests/"
VALID = {"blood_group": "O+", "component": "RED_CELLS", "units": 2, "priority": "EMERGENCY"}

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("body", "status"), refused_bodies(VALID))
def test_a_body_too_large_or_too_deep_is_refused_and_creates_nothing(api, body, status):
    response = api.generic("POST", URL, body, content_type="application/json")

    assert response.status_code == status
    assert response.json()["detail"].startswith(("Request body too large", "JSON parse error - nested deeper"))
    assert not BloodRequest.objects.exists()
    assert api.post(URL, VALID, format="json").status_code == 201  # the same client, a sane body
