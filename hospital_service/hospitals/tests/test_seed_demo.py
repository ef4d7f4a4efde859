"""seed_demo: the shared demo hospitals and their staff, idempotently."""

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from rest_framework.test import APIClient

from hospitals.models import Hospital, StaffMembership
from shared_events.demo import HOSPITALS, demo_password

pytestmark = pytest.mark.django_db


def _snapshot():
    users = list(get_user_model().objects.order_by("username").values_list("username", "password"))
    memberships = list(StaffMembership.objects.order_by("user__username").values_list("user__username", "hospital_id"))
    return list(Hospital.objects.values_list("id", "name")), users, memberships


def test_seed_demo_creates_the_shared_hospitals_and_their_staff(rf):
    call_command("seed_demo")

    assert {(h.id, h.name) for h in Hospital.objects.all()} == {(d.id, d.name) for d in HOSPITALS}
    for demo in HOSPITALS:
        # With a request, as every login has one (django-axes counts attempts per address).
        user = authenticate(rf.post("/accounts/login/"), username=demo.username, password=demo_password())
        assert user is not None
        assert user.hospital_membership.hospital_id == demo.id


def test_seed_demo_twice_changes_nothing():
    call_command("seed_demo")
    before = _snapshot()
    call_command("seed_demo")
    assert _snapshot() == before


def test_a_demo_user_logs_in_with_a_token_and_sees_only_its_hospital():
    call_command("seed_demo")
    client = APIClient()
    token = client.post(
        "/api/v1/auth/token/", {"username": "stmary_staff", "password": demo_password()}, format="json"
    ).data["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    response = client.post(
        "/api/v1/blood-requests/",
        {"blood_group": "O-", "component": "RED_CELLS", "units": 1, "priority": "EMERGENCY"},
        format="json",
    )

    assert response.status_code == 201
    assert response.data["hospital_id"] == str(HOSPITALS[0].id)


def test_health_schema_and_docs_are_served(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/blood-requests/" in schema.content
    assert client.get("/api/docs/").status_code == 200
