"""Fixtures shared by every app's tests: hospitals, their staff, and API clients."""

import pytest
from rest_framework.test import APIClient
from testing_support.factories import HospitalFactory, StaffFactory, UserFactory


@pytest.fixture
def hospital():
    return HospitalFactory(name="St Mary's Hospital")


@pytest.fixture
def other_hospital():
    return HospitalFactory(name="City General Hospital")


@pytest.fixture
def staff(hospital):
    return StaffFactory(hospital=hospital, username="stmary_staff").user


@pytest.fixture
def other_staff(other_hospital):
    return StaffFactory(hospital=other_hospital, username="citygeneral_staff").user


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def api(staff) -> APIClient:
    return _client(staff)


@pytest.fixture
def other_api(other_staff) -> APIClient:
    return _client(other_staff)


@pytest.fixture
def outsider_api() -> APIClient:
    """A logged-in user who is nobody's staff."""
    return _client(UserFactory(username="visitor"))
