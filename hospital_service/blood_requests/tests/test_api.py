"""The blood-request API: creation, validation, tenancy, transitions and Idempotency-Key."""

from datetime import timedelta

import pytest
from django.utils import timezone
from local_inventory.models import LocalUnit
from rest_framework.test import APIClient
from testing_support.factories import approve_and_dispatch, approved_event, make_request, receive_all, rejected_event

from blood_requests import services
from blood_requests.models import BloodRequest, IdempotencyRecord
from shared_events import topics
from shared_events.din import check_character, make_din
from shared_events.django.models import OutboxEvent
from shared_events.envelope import parse_event

pytestmark = pytest.mark.django_db

URL = "/api/v1/blood-requests/"
EMERGENCY = {"blood_group": "O-", "component": "RED_CELLS", "units": 4, "priority": "EMERGENCY"}


def _events(event_type: str):
    return [parse_event(bytes(row.value)) for row in OutboxEvent.objects.filter(event_type=event_type).order_by("id")]


def _scheduled(**overrides):
    body = {
        "blood_group": "A+",
        "component": "PLATELETS",
        "units": 2,
        "priority": "SCHEDULED",
        "needed_by": (timezone.now() + timedelta(days=1)).isoformat(),
    }
    return body | overrides


def test_an_emergency_request_is_stored_pending_and_published(api, hospital, staff):
    response = api.post(URL, EMERGENCY | {"patient_reference": "MRN-0042", "reason": "trauma bay"}, format="json")

    assert response.status_code == 201, response.data
    body = response.data
    assert body["status"] == "PENDING"
    assert body["allow_partial"] is True
    assert [h["status"] for h in body["status_history"]] == ["PENDING"]
    (event,) = _events(topics.REQUESTED)
    assert event.subject == body["id"] == event.correlation_id
    data = event.data
    assert str(data.request_id) == body["id"]
    assert data.hospital_id == hospital.id
    assert data.hospital_name == "St Mary's Hospital"
    assert data.requested_by == "stmary_staff"
    assert (data.units, data.blood_group.value, data.component.value) == (4, "O-", "RED_CELLS")
    assert data.patient_reference == "MRN-0042"
    assert data.needed_by is None
    assert data.requested_at is not None
    assert data.indication == "OTHER"  # the default code; the free-text note stays here
    assert body["reason"] == "trauma bay"


def test_free_text_that_names_a_patient_stays_in_the_hospital_and_only_the_indication_code_travels(api):
    note = "Patient John Smith DOB 1970-01-01 NHS 943 476 5919"
    response = api.post(URL, EMERGENCY | {"indication": "OBSTETRIC_HAEMORRHAGE", "reason": note}, format="json")
    assert response.status_code == 201, response.data
    assert response.data["indication"] == "OBSTETRIC_HAEMORRHAGE" and response.data["reason"] == note
    cancelled = api.post(f"{URL}{response.data['id']}/cancel/", {"reason": f"{note} died"}, format="json")
    assert cancelled.status_code == 200 and cancelled.data["cancel_reason_code"] == "OTHER"

    published = [bytes(row.value).decode() for row in OutboxEvent.objects.all()]
    assert len(published) == 2
    for raw in published:
        assert "Smith" not in raw and "1970-01-01" not in raw and "943 476 5919" not in raw, raw
    (requested,) = _events(topics.REQUESTED)
    assert requested.data.indication == "OBSTETRIC_HAEMORRHAGE"
    assert api.post(URL, EMERGENCY | {"indication": "a patient's name"}, format="json").status_code == 400


MTP = {"protocol": "MTP", "blood_group": "UNKNOWN", "priority": "EMERGENCY"}


@pytest.mark.parametrize(
    "written",
    [
        "Patient John Smith DOB 1970-01-01 NHS 943 476 5919",
        "Dr Okafor re MRN-0042",
        "Dr Okafor 07700 900123",
        "okafor@example.org",
    ],
)
def test_the_authorising_clinician_cannot_carry_a_patients_details_to_the_bank(api, written):
    """authorised_by travels in hospital.blood.requested: a name or username, never numbers (issue 17)."""
    response = api.post(URL, MTP | {"authorised_by": written}, format="json")
    assert response.status_code == 400 and "authorised_by" in response.data, response.data
    assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize("name", ["Dr A. Okafor", "dr_okafor", "Siân O\u2019Brien-Jones", "  Dr   Lee "])
def test_a_clinicians_name_or_username_is_accepted_as_the_authorisation(api, name):
    response = api.post(URL, MTP | {"authorised_by": name}, format="json")
    assert response.status_code == 201, response.data
    (requested,) = _events(topics.REQUESTED)
    assert requested.data.authorised_by == " ".join(name.split())


def test_a_scheduled_request_is_all_or_nothing_by_default_and_carries_needed_by(api):
    response = api.post(URL, _scheduled(), format="json")

    assert response.status_code == 201, response.data
    assert response.data["allow_partial"] is False
    (event,) = _events(topics.REQUESTED)
    assert event.data.needed_by is not None


@pytest.mark.parametrize("needed_by_offset", ["+00:00", "+05:30"])
def test_the_created_answer_is_what_reading_the_request_back_returns(
    api, needed_by_offset, django_assert_max_num_queries
):
    needed_by = (timezone.now() + timedelta(days=1)).replace(microsecond=123456, tzinfo=None).isoformat()
    body = _scheduled(needed_by=needed_by + needed_by_offset, patient_reference="MRN-7")
    with django_assert_max_num_queries(6):  # hospital, BEGIN, request, history, outbox, COMMIT: no read-back
        created = api.post(URL, body, format="json")
    assert created.status_code == 201
    assert created.json() == api.get(f"{URL}{created.json()['id']}/").json()


def test_allow_partial_can_be_overridden(api):
    response = api.post(URL, EMERGENCY | {"allow_partial": False}, format="json")
    assert response.data["allow_partial"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (EMERGENCY | {"units": 0}, "units"),
        (EMERGENCY | {"units": 21}, "units"),
        (EMERGENCY | {"blood_group": "C+"}, "blood_group"),
        (EMERGENCY | {"component": "BLOOD"}, "component"),
        (EMERGENCY | {"priority": "WHENEVER"}, "priority"),
        (_scheduled(needed_by=None), "needed_by"),
        ({k: v for k, v in _scheduled().items() if k != "needed_by"}, "needed_by"),
        (_scheduled(needed_by=(timezone.now() - timedelta(minutes=1)).isoformat()), "needed_by"),
        (EMERGENCY | {"patient_reference": "John Smith"}, "patient_reference"),
        (EMERGENCY | {"patient_reference": "X" * 65}, "patient_reference"),
    ],
)
def test_invalid_input_is_a_400_with_field_errors_and_changes_nothing(api, body, field):
    response = api.post(URL, body, format="json")

    assert response.status_code == 400
    assert field in response.data
    assert not BloodRequest.objects.exists()
    assert not OutboxEvent.objects.exists()


def test_without_credentials_the_api_answers_401():
    assert APIClient().get(URL).status_code == 401
    assert APIClient().post(URL, EMERGENCY, format="json").status_code == 401


def test_a_user_who_is_no_hospitals_staff_gets_403(outsider_api):
    assert outsider_api.get(URL).status_code == 403
    assert outsider_api.post(URL, EMERGENCY, format="json").status_code == 403
    assert outsider_api.get("/api/v1/bank-stock/").status_code == 403


def test_the_list_is_newest_first_and_filters(api, hospital, staff):
    first = make_request(hospital=hospital, user=staff, blood_group="A+")
    second = make_request(
        hospital=hospital,
        user=staff,
        blood_group="B+",
        priority="SCHEDULED",
        needed_by=timezone.now() + timedelta(hours=5),
    )

    listed = api.get(URL).data
    assert [r["id"] for r in listed["results"]] == [str(second.id), str(first.id)]
    assert listed["count"] == 2
    assert [r["id"] for r in api.get(URL, {"blood_group": "A+"}).data["results"]] == [str(first.id)]
    assert [r["id"] for r in api.get(URL, {"priority": "SCHEDULED"}).data["results"]] == [str(second.id)]
    assert api.get(URL, {"status": "APPROVED"}).data["count"] == 0


def test_another_hospitals_request_is_404_everywhere(api, other_hospital, other_staff):
    theirs = make_request(hospital=other_hospital, user=other_staff)

    assert api.get(f"{URL}{theirs.id}/").status_code == 404
    assert api.post(f"{URL}{theirs.id}/cancel/", {}, format="json").status_code == 404
    assert api.post(f"{URL}{theirs.id}/receive/", {}, format="json").status_code == 404
    assert api.get(URL).data["count"] == 0
    theirs.refresh_from_db()
    assert theirs.status == "PENDING"


def test_detail_shows_decision_allocations_and_history(api, hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff, units=2)
    event = approved_event(blood_request)
    services.record_approval(data=event.data, event_id=event.id)

    body = api.get(f"{URL}{blood_request.id}/").data

    assert body["status"] == "APPROVED"
    assert [h["status"] for h in body["status_history"]] == ["PENDING", "APPROVED"]
    assert all(h["at"] and h["detail"] for h in body["status_history"])
    assert body["decision"]["reason_code"] is None
    assert body["units_allocated"] == 2
    sent = [a.model_dump(mode="json") for a in event.data.allocations]
    assert [a["din"] for a in body["allocations"]] == [a["din"] for a in sent]
    assert {"unit_id", "din", "component", "blood_group", "expires_at", "batch"} <= set(body["allocations"][0])


def test_a_pending_request_can_be_cancelled_and_the_bank_is_told(api, hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff)

    response = api.post(
        f"{URL}{blood_request.id}/cancel/",
        {"reason_code": "NOT_REQUIRED", "reason": "patient stabilised"},
        format="json",
    )

    assert response.status_code == 200
    assert response.data["status"] == "CANCELLED"
    assert response.data["status_history"][-1]["detail"].endswith("patient stabilised")
    assert (response.data["cancel_reason_code"], response.data["cancel_reason"]) == (
        "NOT_REQUIRED",
        "patient stabilised",
    )
    (event,) = _events(topics.CANCELLED)
    assert event.subject == str(blood_request.id) == event.correlation_id
    assert event.data.reason_code == "NOT_REQUIRED"
    assert event.data.cancelled_by == "stmary_staff"


def test_an_approved_request_can_be_cancelled(api, hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff)
    event = approved_event(blood_request, units=1)
    services.record_approval(data=event.data, event_id=event.id)

    response = api.post(f"{URL}{blood_request.id}/cancel/", {}, format="json")

    assert response.status_code == 200
    assert response.data["status"] == "CANCELLED"


@pytest.mark.parametrize("final", ["REJECTED", "CANCELLED", "FULFILLED"])
def test_a_closed_request_cannot_be_cancelled(api, hospital, staff, final):
    blood_request = make_request(hospital=hospital, user=staff)
    if final == "REJECTED":
        event = rejected_event(blood_request)
        services.record_rejection(data=event.data, event_id=event.id)
    elif final == "CANCELLED":
        services.cancel_blood_request(blood_request_id=blood_request.id, hospital=hospital, user=staff)
    else:
        receive_all(blood_request, user=staff)
    cancels_before = OutboxEvent.objects.filter(event_type=topics.CANCELLED).count()

    response = api.post(f"{URL}{blood_request.id}/cancel/", {}, format="json")

    assert response.status_code == 409
    blood_request.refresh_from_db()
    assert blood_request.status == final
    assert OutboxEvent.objects.filter(event_type=topics.CANCELLED).count() == cancels_before


def test_receiving_by_din_scan_puts_the_dispatched_units_into_local_stock(api, hospital, staff):
    blood_request = approve_and_dispatch(make_request(hospital=hospital, user=staff, units=3), units=2)
    dins = [unit["din"] for unit in blood_request.dispatched_units]

    response = api.post(f"{URL}{blood_request.id}/receive/", {"dins": dins}, format="json")

    assert response.status_code == 200, response.data
    assert response.data["status"] == "FULFILLED"
    assert [h["status"] for h in response.data["status_history"]] == [
        "PENDING",
        "PARTIALLY_APPROVED",
        "DISPATCHED",
        "FULFILLED",
    ]
    units = LocalUnit.objects.filter(source_request=blood_request)
    assert sorted(u.din for u in units) == sorted(dins)
    assert {u.status for u in units} == {"AVAILABLE"}
    [received] = [parse_event(bytes(r.value)) for r in OutboxEvent.objects.filter(event_type=topics.UNITS_RECEIVED)]
    assert sorted(received.data.dins) == sorted(dins)


def test_a_scan_that_differs_is_refused_with_what_differs_and_nothing_recorded(api, hospital, staff):
    blood_request = approve_and_dispatch(make_request(hospital=hospital, user=staff, units=2))
    first, second = (unit["din"] for unit in blood_request.dispatched_units)
    stranger = make_din("A9999", 26, 999_999)

    response = api.post(f"{URL}{blood_request.id}/receive/", {"dins": [first, first, stranger]}, format="json")

    assert response.status_code == 409
    assert response.data["unexpected_dins"] == sorted([first, stranger])
    assert response.data["missing_dins"] == [second]
    blood_request.refresh_from_db()
    assert blood_request.status == "DISPATCHED"
    assert not LocalUnit.objects.exists()
    assert not OutboxEvent.objects.filter(event_type=topics.UNITS_RECEIVED).exists()


def test_a_din_with_a_wrong_check_character_is_a_400(api, hospital, staff):
    blood_request = approve_and_dispatch(make_request(hospital=hospital, user=staff, units=1))
    din = blood_request.dispatched_units[0]["din"]
    wrong = "0" if check_character(din) != "0" else "1"
    response = api.post(f"{URL}{blood_request.id}/receive/", {"dins": [din + wrong]}, format="json")
    assert response.status_code == 400
    assert "dins" in response.data
    ok = api.post(f"{URL}{blood_request.id}/receive/", {"dins": [din + check_character(din)]}, format="json")
    assert ok.status_code == 200


@pytest.mark.parametrize("state", ["PENDING", "APPROVED", "REJECTED", "FULFILLED"])
def test_receiving_is_409_unless_dispatched(api, hospital, staff, state):
    blood_request = make_request(hospital=hospital, user=staff)
    if state == "REJECTED":
        event = rejected_event(blood_request)
        services.record_rejection(data=event.data, event_id=event.id)
    elif state == "APPROVED":
        event = approved_event(blood_request)
        services.record_approval(data=event.data, event_id=event.id)
    elif state == "FULFILLED":
        receive_all(blood_request, user=staff)
    units_before = LocalUnit.objects.count()

    dins = [a["din"] for a in BloodRequest.objects.get(pk=blood_request.pk).allocations] or [make_din("A9999", 26, 1)]
    assert api.post(f"{URL}{blood_request.id}/receive/", {"dins": dins}, format="json").status_code == 409
    assert LocalUnit.objects.count() == units_before


# -- Idempotency-Key ----------------------------------------------------------------------


def test_a_retried_post_with_the_same_key_returns_the_first_response_and_creates_nothing(api):
    first = api.post(URL, EMERGENCY, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    retry = api.post(URL, dict(reversed(list(EMERGENCY.items()))), format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    assert first.status_code == retry.status_code == 201
    assert retry.data == first.data
    assert BloodRequest.objects.count() == 1
    assert len(_events(topics.REQUESTED)) == 1


def test_the_same_key_with_another_body_is_refused_with_422(api):
    api.post(URL, EMERGENCY, format="json", HTTP_IDEMPOTENCY_KEY="key-2")

    response = api.post(URL, EMERGENCY | {"units": 5}, format="json", HTTP_IDEMPOTENCY_KEY="key-2")

    assert response.status_code == 422
    assert BloodRequest.objects.count() == 1


def test_keys_are_scoped_per_user(api, other_api):
    mine = api.post(URL, EMERGENCY, format="json", HTTP_IDEMPOTENCY_KEY="shared-key")
    theirs = other_api.post(URL, EMERGENCY, format="json", HTTP_IDEMPOTENCY_KEY="shared-key")

    assert mine.status_code == theirs.status_code == 201
    assert mine.data["id"] != theirs.data["id"]
    assert BloodRequest.objects.count() == 2


def test_an_invalid_body_does_not_use_up_the_key(api):
    bad = api.post(URL, EMERGENCY | {"units": 99}, format="json", HTTP_IDEMPOTENCY_KEY="key-3")
    good = api.post(URL, EMERGENCY, format="json", HTTP_IDEMPOTENCY_KEY="key-3")

    assert bad.status_code == 400
    assert good.status_code == 201
    assert IdempotencyRecord.objects.filter(key="key-3").count() == 1


def test_different_keys_create_different_requests(api):
    api.post(URL, EMERGENCY, format="json", HTTP_IDEMPOTENCY_KEY="a")
    api.post(URL, EMERGENCY, format="json", HTTP_IDEMPOTENCY_KEY="b")
    assert BloodRequest.objects.count() == 2


def test_an_overlong_key_is_a_400(api):
    response = api.post(URL, EMERGENCY, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert response.status_code == 400
    assert not BloodRequest.objects.exists()
