"""Security of the blood bank service: nothing without credentials, and only blood bank staff get in.

Hospital staff have no account here (tokens are per service; the cross-service check is in
tests/test_flow.py); a login that exists here but is not bank staff gets 403 everywhere.
Tokens are real (``POST /api/v1/auth/token/``), not ``force_authenticate``.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from shared_events.access_probe import (
    OPEN_URL_NAMES,
    answers_other_than,
    protected_operations,
    token_client,
    url_access_problems,
)

pytestmark = pytest.mark.django_db

# Open without credentials: the shared ones (health, metrics, token login, schema, docs) and the login pages.
PUBLIC_URLS = {*OPEN_URL_NAMES, "rest_framework:login", "rest_framework:logout", "admin:login"}
PASSWORD = "a-long-test-password"


def _operations():
    return protected_operations(
        including={
            "POST /api/v1/units/{id}/quarantine/",
            "PUT /api/v1/thresholds/",
            "GET /api/v1/requests/{request_id}/",
        }
    )


def _token_client(username: str, password: str = PASSWORD) -> APIClient:
    return token_client(username, password)


def test_every_operation_in_the_openapi_schema_answers_401_without_credentials():
    assert answers_other_than(APIClient(), _operations(), 401) == {}


def test_every_operation_answers_403_to_a_login_that_is_not_blood_bank_staff():
    get_user_model().objects.create_user(username="ward_clerk", password=PASSWORD)
    client = _token_client("ward_clerk")
    assert answers_other_than(client, _operations(), 403) == {}


def test_a_token_this_service_did_not_issue_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    assert client.get("/api/v1/stock/").status_code == 401


def test_every_other_url_redirects_an_anonymous_caller_to_a_login_page_or_answers_401():
    assert url_access_problems(Client(), PUBLIC_URLS) == []
