"""Simultaneous retries with one Idempotency-Key: PostgreSQL's unique index lets exactly one through; simultaneous
next-pack or stop-mtp presses: the request's row lock lets exactly one through."""

import threading

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient
from testing_support.factories import approved_event, make_request, mtp_pack_allocations

from blood_requests import services
from blood_requests.models import BloodRequest, MtpPack
from shared_events import topics
from shared_events.django.models import OutboxEvent

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"blood_group": "B+", "component": "PLASMA", "units": 3, "priority": "EMERGENCY"}


def test_concurrent_retries_with_the_same_key_create_one_request(staff):
    attempts = 6
    barrier = threading.Barrier(attempts)
    responses = []

    def post() -> None:
        client = APIClient()
        client.force_authenticate(staff)
        try:
            barrier.wait()
            response = client.post("/api/v1/blood-requests/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="storm")
            responses.append((response.status_code, response.data["id"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(responses) == attempts
    assert {status for status, _ in responses} == {201}
    assert len({request_id for _, request_id in responses}) == 1
    assert BloodRequest.objects.count() == 1
    assert OutboxEvent.objects.filter(event_type=topics.REQUESTED).count() == 1


def _race(staff, attempts: int, act) -> list[int]:
    barrier = threading.Barrier(attempts)
    statuses: list[int] = []

    def run() -> None:
        client = APIClient()
        client.force_authenticate(staff)
        try:
            barrier.wait()
            statuses.append(act(client).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return statuses


def test_nurses_pressing_next_pack_together_ask_the_bank_for_one_pack(staff, hospital):
    mtp = make_request(hospital=hospital, user=staff, protocol="MTP", blood_group="O+", authorised_by="Dr O")
    decision = approved_event(mtp, pack=1, allocations=mtp_pack_allocations(pack=1), units_requested=8)
    services.record_approval(data=decision.data, event_id=decision.id)

    statuses = _race(staff, 5, lambda client: client.post(f"/api/v1/blood-requests/{mtp.id}/next-pack/"))

    assert sorted(statuses) == [200, 409, 409, 409, 409]
    assert list(MtpPack.objects.filter(request=mtp).values_list("number", flat=True)) == [1, 2]
    assert OutboxEvent.objects.filter(event_type=topics.MTP_PACK_REQUESTED).count() == 1
    stops = _race(staff, 4, lambda client: client.post(f"/api/v1/blood-requests/{mtp.id}/stop-mtp/"))
    assert sorted(stops) == [200, 409, 409, 409]
    assert OutboxEvent.objects.filter(event_type=topics.MTP_STOPPED).count() == 1


@pytest.mark.parametrize("hold", ["a bank decision", "a cancellation"])
def test_a_request_held_for_an_update_leaves_its_hospital_free_to_create_requests(staff, hospital, hold):
    """The row lock of an update is the request's alone: a new request's foreign key check takes a KEY SHARE
    lock on its hospital's row, so a lock on that row too would make every POST of the hospital wait for
    the update's transaction (a consumer batch, a cancellation) to commit."""
    held = make_request(hospital=hospital, user=staff)
    outcome: dict[str, object] = {}

    def post_while_held() -> None:
        client = APIClient()
        client.force_authenticate(staff)
        try:
            with connection.cursor() as cursor:  # this thread's own connection: fail fast instead of waiting
                cursor.execute("SET lock_timeout = '2s'")
            outcome["status"] = client.post("/api/v1/blood-requests/", BODY, format="json").status_code
        except Exception as exc:  # noqa: BLE001 - the lock timeout, reported by the assertion below
            outcome["error"] = repr(exc)
        finally:
            connection.close()

    with transaction.atomic():
        if hold == "a bank decision":
            decision = approved_event(held)
            services.record_approval(data=decision.data, event_id=decision.id)
        else:
            services.cancel_blood_request(blood_request_id=held.id, hospital=hospital, user=staff)
        thread = threading.Thread(target=post_while_held)
        thread.start()
        thread.join(timeout=30)

    assert outcome == {"status": 201}
    assert BloodRequest.objects.filter(hospital=hospital).count() == 2
