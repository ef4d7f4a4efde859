"""Security of the notification service: nothing without credentials, each audience sees only its own.

Tokens are real (``POST /api/v1/auth/token/``), not ``force_authenticate``; a token another service
issued is unknown here (tokens are per service; the cross-service check is in tests/test_flow.py).
"""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from notifications.handlers import HANDLERS
from notifications.models import Notification
from notifications.tests import factories
from notifications.tests.factories import CITY_GENERAL, ST_MARY
from shared_events.access_probe import (
    OPEN_URL_NAMES,
    answers_other_than,
    protected_operations,
    token_client,
    url_access_problems,
)

pytestmark = pytest.mark.django_db
URL = "/api/v1/notifications/"
# Open without credentials: the shared ones (health, metrics, token login, schema, docs) and the login pages.
PUBLIC_URLS = {*OPEN_URL_NAMES, "rest_framework:login", "rest_framework:logout", "admin:login"}


def _operations():
    return protected_operations(
        including={"POST /api/v1/notifications/{id}/read/", "GET /api/v1/notifications/stream/"}
    )


def _token_client(username: str) -> APIClient:
    return token_client(username, "pw-for-tests")


def test_every_operation_in_the_openapi_schema_answers_401_without_credentials():
    assert answers_other_than(APIClient(), _operations(), 401) == {}


def test_every_operation_answers_403_to_a_login_without_an_audience():
    factories.UserFactory(username="visitor")
    client = _token_client("visitor")
    assert answers_other_than(client, _operations(), 403) == {}


def test_a_token_this_service_did_not_issue_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    assert client.get(URL).status_code == 401
    assert client.get(f"{URL}stream/").status_code == 401


def test_every_other_url_redirects_an_anonymous_caller_to_a_login_page_or_answers_401():
    assert url_access_problems(Client(), PUBLIC_URLS) == []


def test_another_hospital_s_reads_never_touch_or_count_our_notifications():
    factories.hospital_user(ST_MARY)
    factories.hospital_user(CITY_GENERAL)
    stmary, citygeneral = _token_client(ST_MARY.username), _token_client(CITY_GENERAL.username)
    ours = factories.requested(hospital=ST_MARY)
    HANDLERS[ours.type](ours)
    notification = Notification.objects.get(audience=ST_MARY.audience)

    assert citygeneral.get(f"{URL}{notification.id}/").status_code == 404
    assert citygeneral.post(f"{URL}{notification.id}/read/").status_code == 404
    assert citygeneral.get(URL, {"request_id": str(ours.data.request_id)}).json()["count"] == 0
    assert stmary.get(URL, {"request_id": str(ours.data.request_id)}).json()["count"] == 1
    assert citygeneral.get(f"{URL}unread-count/").json() == {"unread": 0}
    assert citygeneral.post(f"{URL}read-all/").json() == {"marked_read": 0}

    notification.refresh_from_db()
    assert notification.read_at is None
    assert stmary.get(f"{URL}unread-count/").json() == {"unread": 1}
