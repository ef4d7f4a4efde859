"""Simultaneous retries with one Idempotency-Key: PostgreSQL's unique index lets exactly one through."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from blood_requests.models import BloodRequest
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
