"""Oversized and deeply nested request bodies are refused with a JSON error and change nothing."""

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from notifications.handlers import HANDLERS
from notifications.models import Notification
from notifications.tests import factories
from notifications.tests.factories import ST_MARY
from shared_events.testing import refused_bodies

pytestmark = pytest.mark.django_db
LOGIN = {"username": ST_MARY.username, "password": "pw-for-tests"}


@pytest.mark.parametrize(("body", "status"), refused_bodies(LOGIN))
def test_a_token_login_too_large_or_too_deep_is_refused_and_issues_no_token(body, status):
    factories.hospital_user(ST_MARY)
    client = APIClient()

    response = client.generic("POST", "/api/v1/auth/token/", body, content_type="application/json")

    assert response.status_code == status
    assert response.json()["detail"].startswith(("Request body too large", "JSON parse error - nested deeper"))
    assert not AuthToken.objects.exists()
    assert client.post("/api/v1/auth/token/", LOGIN, format="json").status_code == 200


def test_an_oversized_body_is_refused_even_where_the_view_reads_no_body(stmary_client):
    event = factories.requested()
    HANDLERS[event.type](event)
    unread = Notification.objects.filter(read_at__isnull=True).count()

    response = stmary_client.generic("POST", "/api/v1/notifications/read-all/", b"x" * 70_000, "application/json")

    assert response.status_code == 413
    assert unread > 0 and Notification.objects.filter(read_at__isnull=True).count() == unread
