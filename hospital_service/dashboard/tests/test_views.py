"""The dashboard's server side: login, tenancy, the form (API rules), actions and the state endpoint."""

from datetime import timedelta

import pytest
from blood_requests import services
from blood_requests.handlers import HANDLERS
from blood_requests.models import BloodRequest
from django.utils import timezone
from local_inventory.models import LocalUnit
from testing_support.factories import (
    UserFactory,
    approve_and_dispatch,
    approved_event,
    inventory_event,
    low_stock_event,
    make_request,
    receive_all,
)

from shared_events import topics
from shared_events.django.models import OutboxEvent

pytestmark = pytest.mark.django_db

FORM = {"priority": "EMERGENCY", "blood_group": "O-", "component": "RED_CELLS", "units": "2"}


@pytest.fixture
def browser(client, staff):
    client.force_login(staff)
    return client


def test_the_dashboard_needs_a_login(client):
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_login_page_logs_staff_in_to_the_dashboard(client, staff):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert b'<label for="id_username">' in page.content

    response = client.post("/accounts/login/", {"username": "stmary_staff", "password": "pw-for-tests"})

    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"


def test_a_user_without_a_hospital_is_refused(client):
    client.force_login(UserFactory(username="nobody"))
    assert client.get("/dashboard/").status_code == 403
    assert client.get("/dashboard/state/").status_code == 403
    assert client.post("/dashboard/requests/", FORM).status_code == 403


def test_the_dashboard_shows_requests_stock_and_alerts(browser, hospital, staff, other_hospital, other_staff):
    mine = make_request(hospital=hospital, user=staff, patient_reference="MRN-7")
    theirs = make_request(hospital=other_hospital, user=other_staff)
    HANDLERS[topics.INVENTORY_UPDATED](inventory_event(blood_group="O-", available=2, level="CRITICAL"))
    HANDLERS[topics.LOW_STOCK](low_stock_event(blood_group="O-", level="CRITICAL", available=2))

    page = browser.get("/dashboard/").content.decode()

    assert f'data-request-id="{mine.id}"' in page
    assert str(theirs.id) not in page
    assert "MRN-7" in page
    assert "level-critical" in page
    assert "Bank stock CRITICAL" in page


def test_the_state_endpoint_reports_statuses_and_fragments(browser, hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff)
    event = approved_event(blood_request)
    services.record_approval(data=event.data, event_id=event.id)

    state = browser.get("/dashboard/state/").json()

    assert state["statuses"] == {str(blood_request.id): "APPROVED"}
    assert set(state["regions"]) == {"requests", "local-stock", "bank-stock", "alerts"}
    assert "APPROVED" in state["regions"]["requests"]
    assert "Request approved" in state["regions"]["alerts"]


def test_the_form_creates_a_request_like_the_api(browser, hospital):
    response = browser.post("/dashboard/requests/", FORM)

    assert response.status_code == 302
    blood_request = BloodRequest.objects.get()
    assert (blood_request.hospital, blood_request.units, blood_request.allow_partial) == (hospital, 2, True)
    assert OutboxEvent.objects.filter(event_type=topics.REQUESTED).count() == 1


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (FORM | {"units": "21"}, "less than or equal to 20"),
        (FORM | {"priority": "SCHEDULED"}, "Required for a SCHEDULED request."),
        (
            FORM
            | {"priority": "SCHEDULED", "needed_by": (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")},
            "Must be in the future.",
        ),
        (FORM | {"patient_reference": "Jane Doe"}, "never a patient"),
    ],
)
def test_the_form_shows_the_apis_validation_messages(browser, form, message):
    response = browser.post("/dashboard/requests/", form)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode()
    assert not BloodRequest.objects.exists()


def test_cancel_and_receive_by_scanning(browser, hospital, staff):
    to_cancel = make_request(hospital=hospital, user=staff)
    to_receive = approve_and_dispatch(make_request(hospital=hospital, user=staff, units=1))
    din = to_receive.dispatched_units[0]["din"]

    browser.post(f"/dashboard/requests/{to_cancel.id}/cancel/", {"reason": "not needed"})
    wrong = browser.post(f"/dashboard/requests/{to_receive.id}/receive/", {"dins": "A999926999999"}, follow=True)
    assert "do not match" in wrong.content.decode()
    browser.post(f"/dashboard/requests/{to_receive.id}/receive/", {"dins": din})
    again = browser.post(f"/dashboard/requests/{to_receive.id}/receive/", {"dins": din}, follow=True)

    to_cancel.refresh_from_db()
    to_receive.refresh_from_db()
    assert (to_cancel.status, to_cancel.cancel_reason) == ("CANCELLED", "not needed")
    assert to_receive.status == "FULFILLED"
    assert LocalUnit.objects.filter(source_request=to_receive).count() == 1
    assert "Not done" in again.content.decode()


def test_actions_on_another_hospitals_request_are_404(browser, other_hospital, other_staff):
    theirs = make_request(hospital=other_hospital, user=other_staff)
    assert browser.post(f"/dashboard/requests/{theirs.id}/cancel/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "PENDING"


def test_unit_buttons_transfuse_and_discard(browser, hospital, staff):
    receive_all(make_request(hospital=hospital, user=staff, units=2), user=staff)
    first, second = LocalUnit.objects.order_by("din")

    browser.post(f"/dashboard/units/{first.id}/transfuse/", {"patient_reference": ""})
    browser.post(f"/dashboard/units/{second.id}/discard/", {"reason": ""})
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("AVAILABLE", "AVAILABLE")

    browser.post(f"/dashboard/units/{first.id}/transfuse/", {"patient_reference": "MRN-12"})
    browser.post(f"/dashboard/units/{second.id}/discard/", {"reason": "TEMPERATURE_EXCURSION"})
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.patient_reference) == ("TRANSFUSED", "MRN-12")
    assert (second.status, second.waste_reason) == ("WASTED", "TEMPERATURE_EXCURSION")


@pytest.mark.parametrize("path", ["/dashboard/", "/accounts/login/"])
def test_the_dashboard_and_its_login_page_carry_a_strict_content_security_policy(client, staff, path):
    if path == "/dashboard/":
        client.force_login(staff)
    response = client.get(path)
    assert response.status_code == 200
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == policy["style-src"] == "'self'"  # no inline script or style runs
    assert policy["default-src"] == policy["frame-ancestors"] == "'none'"
    assert "<script>" not in response.content.decode() and " style=" not in response.content.decode()
