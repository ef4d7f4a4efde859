"""Fixtures shared by the notification tests: API clients logged in as each audience."""

import pytest
from notifications.tests import factories
from rest_framework.test import APIClient

from shared_events.testing import token_for


def _client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


@pytest.fixture
def stmary_client(db) -> APIClient:
    return _client_for(factories.hospital_user(factories.ST_MARY))


@pytest.fixture
def citygeneral_client(db) -> APIClient:
    return _client_for(factories.hospital_user(factories.CITY_GENERAL))


@pytest.fixture
def bank_client(db) -> APIClient:
    return _client_for(factories.bank_user())
