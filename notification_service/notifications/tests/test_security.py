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
    OPEN_OPERATIONS,
    OPEN_URL_NAMES,
    openapi_schema,
    schema_operations,
    url_access_problems,
)

pytestmark = pytest.mark.django_db
URL = "/api/v1/notifications/"
# Open without credentials: the shared ones (health, metrics, token login, schema, docs) and the login pages.
PUBLIC_URLS = {*OPEN_URL_NAMES, "rest_framework:login", "rest_framework:logout", "admin:login"}


def _operations():
    operations = [op for op in schema_operations(openapi_schema()) if str(op) not in OPEN_OPERATIONS]
    assert {"POST /api/v1/notifications/{id}/read/", "GET /api/v1/notifications/stream/"} <= {
        str(op) for op in operations
    }
    return operations


def _token_client(username: str) -> APIClient:
    response = APIClient().post("/api/v1/auth/token/", {"username": username, "password": "pw-for-tests"})
    assert response.status_code == 200, response.content
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    return client


def test_every_operation_in_the_openapi_schema_answers_401_without_credentials():
    answers = {str(op): APIClient().generic(op.method, op.path).status_code for op in _operations()}
    assert {op: code for op, code in answers.items() if code != 401} == {}


def test_every_operation_answers_403_to_a_login_without_an_audience():
    factories.UserFactory(username="visitor")
    client = _token_client("visitor")
    answers = {str(op): client.generic(op.method, op.path).status_code for op in _operations()}
    assert {op: code for op, code in answers.items() if code != 403} == {}


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
