"""Security of the hospital service: nothing without credentials, and a hospital sees only its own data.

Tokens are real (``POST /api/v1/auth/token/``), not ``force_authenticate``.
"""

from __future__ import annotations

import pytest
from blood_requests.handlers import HANDLERS
from blood_requests.models import BloodRequest
from django.core.cache import cache
from django.test import Client
from local_inventory.models import LocalUnit
from recalls.models import HospitalRecall
from rest_framework.test import APIClient
from testing_support.factories import (
    UserFactory,
    approved_event,
    make_request,
    mtp_pack_allocations,
    recall_event,
    receive_all,
)

from shared_events.access_probe import (
    OPEN_URL_NAMES,
    answers_other_than,
    protected_operations,
    token_client,
    url_access_problems,
)

pytestmark = pytest.mark.django_db
EMERGENCY = {"blood_group": "O-", "component": "RED_CELLS", "units": 2, "priority": "EMERGENCY"}

# Open without credentials: the shared ones (health, metrics, token login, schema, docs) and the login pages.
PUBLIC_URLS = {*OPEN_URL_NAMES, "login", "logout", "admin:login"}


def _operations():
    return protected_operations(
        including={"POST /api/v1/blood-requests/{id}/cancel/", "GET /api/v1/inventory/units/{id}/"}
    )


def test_every_operation_in_the_openapi_schema_answers_401_without_credentials():
    assert answers_other_than(APIClient(), _operations(), 401) == {}


def test_every_other_url_redirects_an_anonymous_caller_to_a_login_page_or_answers_401():
    assert url_access_problems(Client(), PUBLIC_URLS) == []


def _token_client(username: str) -> APIClient:
    return token_client(username, "pw-for-tests")


@pytest.fixture
def received_request(hospital, staff):
    """St Mary's request, approved and received: two units in St Mary's local inventory."""
    return receive_all(make_request(hospital=hospital, user=staff, units=2), user=staff)


def test_every_operation_answers_403_to_a_login_that_is_no_hospital_s_staff():
    UserFactory(username="visitor")
    client = _token_client("visitor")
    assert answers_other_than(client, _operations(), 403) == {}


def test_an_unknown_token_or_an_inactive_user_s_token_is_401(staff):
    client = _token_client(staff.username)
    assert client.get("/api/v1/blood-requests/").status_code == 200
    staff.is_active = False
    staff.save(update_fields=["is_active"])
    assert client.get("/api/v1/blood-requests/").status_code == 401
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    assert stranger.get("/api/v1/blood-requests/").status_code == 401


def test_another_hospital_s_requests_are_404_and_never_listed(staff, other_staff):
    stmary, citygeneral = _token_client(staff.username), _token_client(other_staff.username)
    ours = stmary.post("/api/v1/blood-requests/", EMERGENCY, format="json").json()
    url = f"/api/v1/blood-requests/{ours['id']}/"

    assert citygeneral.get(url).status_code == 404
    assert citygeneral.post(f"{url}cancel/", {"reason": "not ours"}, format="json").status_code == 404
    assert citygeneral.post(f"{url}receive/", format="json").status_code == 404
    assert citygeneral.get("/api/v1/blood-requests/").json()["count"] == 0
    assert citygeneral.get("/api/v1/blood-requests/", {"status": "PENDING"}).json()["count"] == 0

    mine = stmary.get(url).json()
    assert mine["status"] == "PENDING" and [h["status"] for h in mine["status_history"]] == ["PENDING"]


def test_an_idempotency_key_another_hospital_used_creates_its_own_request(staff, other_staff):
    stmary, citygeneral = _token_client(staff.username), _token_client(other_staff.username)
    key = {"HTTP_IDEMPOTENCY_KEY": "shared-key-1"}
    ours = stmary.post("/api/v1/blood-requests/", EMERGENCY, format="json", **key)
    theirs = citygeneral.post("/api/v1/blood-requests/", EMERGENCY, format="json", **key)
    assert (ours.status_code, theirs.status_code) == (201, 201)
    assert theirs.json()["id"] != ours.json()["id"]
    assert theirs.json()["hospital_id"] == str(other_staff.hospital_membership.hospital_id)


def test_another_hospital_s_local_units_are_404_and_never_counted(received_request, staff, other_staff):
    citygeneral = _token_client(other_staff.username)
    unit = LocalUnit.objects.filter(source_request=received_request).first()
    url = f"/api/v1/inventory/units/{unit.id}/"

    assert citygeneral.get(url).status_code == 404
    assert citygeneral.post(f"{url}transfuse/", {}, format="json").status_code == 404
    assert citygeneral.post(f"{url}discard/", {"reason": "not ours"}, format="json").status_code == 404
    back = {"left_storage_at": "2026-01-01T10:00:00Z", "cold_chain_intact": True}
    assert citygeneral.post(f"{url}return/", back, format="json").status_code == 404
    assert citygeneral.get("/api/v1/inventory/units/").json()["count"] == 0
    assert citygeneral.get("/api/v1/inventory/summary/").json() == []

    unit.refresh_from_db()
    assert unit.status == "AVAILABLE"
    assert _token_client(staff.username).get("/api/v1/inventory/units/").json()["count"] == 2


def test_another_hospital_s_mtp_steps_returns_and_recalls_are_404_or_never_listed(received_request, staff, other_staff):
    """The actions and reads issue 14 added (MTP packs, returns, recalls): the tenancy of issue 17's audit holds."""
    stmary, citygeneral = _token_client(staff.username), _token_client(other_staff.username)
    body = {"protocol": "MTP", "blood_group": "UNKNOWN", "priority": "EMERGENCY", "authorised_by": "Dr Okafor"}
    mtp = BloodRequest.objects.get(id=stmary.post("/api/v1/blood-requests/", body, format="json").json()["id"])
    approval = approved_event(mtp, pack=1, allocations=mtp_pack_allocations(pack=1), units_requested=8)
    HANDLERS[approval.type](approval)
    unit = LocalUnit.objects.filter(source_request=received_request).first()
    recall = recall_event(
        recall_id="0b7e6f2d-1c3a-4e5f-8a9b-0c1d2e3f4a5b",
        hospital_id=staff.hospital_membership.hospital_id,
        units=[
            {
                "unit_id": str(unit.bank_unit_id),
                "din": unit.din,
                "component": unit.component,
                "blood_group": unit.blood_group,
                "expires_at": unit.expires_at.isoformat(),
                "request_id": str(received_request.id),
                "bank_status": "ISSUED",
            }
        ],
    )
    HANDLERS[recall.type](recall)
    returned = {
        "left_storage_at": "2026-01-01T00:00:00Z",
        "returned_at": "2026-01-01T00:10:00Z",
        "cold_chain_intact": True,
    }

    for step in ("next-pack", "stop-mtp"):
        assert citygeneral.post(f"/api/v1/blood-requests/{mtp.id}/{step}/").status_code == 404
    assert citygeneral.post(f"/api/v1/inventory/units/{unit.id}/return/", returned, format="json").status_code == 404
    assert citygeneral.get("/api/v1/recalls/").json()["count"] == 0
    browser = Client()
    browser.force_login(other_staff)
    for step in ("next-pack", "stop-mtp"):
        assert browser.post(f"/dashboard/requests/{mtp.id}/{step}/").status_code == 404

    mtp.refresh_from_db()
    unit.refresh_from_db()
    assert (mtp.status, mtp.mtp_stopped_at, unit.status) == ("MTP_ACTIVE", None, "QUARANTINED")
    assert HospitalRecall.objects.count() == 1 and stmary.get("/api/v1/recalls/").json()["count"] == 1


def test_fields_a_caller_may_not_set_are_ignored_by_the_unit_actions(received_request, staff, other_staff):
    stmary = _token_client(staff.username)
    unit = LocalUnit.objects.filter(source_request=received_request).first()
    response = stmary.post(
        f"/api/v1/inventory/units/{unit.id}/transfuse/",
        {
            "patient_reference": "MRN-1",
            "started_at": "2026-01-01T00:00:00Z",
            "status": "AVAILABLE",
            "din": "A999926999999",
            "bank_unit_id": "5d2e8f1a-3b4c-4d5e-9f60-7a8b9c0d1e2f",
            "hospital": str(other_staff.hospital_membership.hospital_id),
            "status_changed_by": other_staff.username,
            "source_request_id": "3f6c2a9e-8d41-4f7b-9a55-0c1e2b7d4a10",
        },
        format="json",
    )
    assert response.status_code == 200, response.data
    unit_before = {"din": unit.din, "bank_unit_id": str(unit.bank_unit_id)}
    unit.refresh_from_db()
    assert (unit.status, unit.hospital_id, unit.status_changed_by) == (
        "TRANSFUSED",
        staff.hospital_membership.hospital_id,
        staff,
    )
    assert {"din": unit.din, "bank_unit_id": str(unit.bank_unit_id)} == unit_before
    assert unit.source_request_id == received_request.id


def test_the_dashboard_shows_and_acts_on_its_own_hospital_only(client, received_request, other_staff):
    client.force_login(other_staff)  # the session login itself is tested in dashboard/tests
    unit = LocalUnit.objects.filter(source_request=received_request).first()

    state = client.get("/dashboard/state/").json()
    assert str(received_request.id) not in state["statuses"]
    assert unit.din not in "".join(state["regions"].values())
    assert client.post(f"/dashboard/requests/{received_request.id}/receive/").status_code == 404
    assert client.post(f"/dashboard/units/{unit.id}/transfuse/").status_code == 404
    assert client.post(f"/dashboard/units/{unit.id}/discard/", {"reason": "not ours"}).status_code == 404
    assert client.post(f"/dashboard/units/{unit.id}/return/", {"minutes_out": "5"}).status_code == 404

    unit.refresh_from_db()
    assert unit.status == "AVAILABLE"


def test_token_logins_are_rate_limited_per_client_address(settings, staff):
    """Password guessing on the token login gets 429 after LOGIN_THROTTLE_RATE (shared by every service)."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"login": "3/minute"}}
    cache.clear()
    guesses = [{"username": staff.username, "password": f"guess-{n}"} for n in range(3)]
    answers = [APIClient().post("/api/v1/auth/token/", guess).status_code for guess in guesses]
    right = APIClient().post("/api/v1/auth/token/", {"username": staff.username, "password": "pw-for-tests"})
    elsewhere = APIClient(REMOTE_ADDR="192.0.2.7").post(
        "/api/v1/auth/token/", {"username": staff.username, "password": "pw-for-tests"}
    )
    cache.clear()
    assert answers == [400, 400, 400]
    assert right.status_code == 429
    assert elsewhere.status_code == 200
