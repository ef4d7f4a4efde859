"""The watchdog re-publishes a still-PENDING request as a new event, backing off."""

from datetime import timedelta

import pytest
from django.utils import timezone
from testing_support.factories import approved_event, make_request

from blood_requests.services import record_approval, republish_stale_requests
from shared_events import topics
from shared_events.django.models import OutboxEvent
from shared_events.envelope import parse_event

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_watchdog(settings):
    settings.REQUEST_REPUBLISH_AFTER_SECONDS = 10
    settings.REQUEST_REPUBLISH_MAX_SECONDS = 40


def _requested_events():
    return [parse_event(bytes(r.value)) for r in OutboxEvent.objects.filter(event_type=topics.REQUESTED).order_by("id")]


def test_a_fresh_request_is_not_republished(hospital, staff):
    make_request(hospital=hospital, user=staff)

    assert republish_stale_requests(now=timezone.now() + timedelta(seconds=9)) == 0
    assert len(_requested_events()) == 1


def test_a_request_still_pending_after_the_threshold_is_published_again_as_a_new_event(hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff, patient_reference="MRN-1")
    later = blood_request.last_published_at + timedelta(seconds=10)

    assert republish_stale_requests(now=later) == 1

    original, repeat = _requested_events()
    assert repeat.id != original.id
    assert repeat.subject == original.subject == str(blood_request.id)
    assert repeat.correlation_id == str(blood_request.id)
    assert repeat.data == original.data
    blood_request.refresh_from_db()
    assert blood_request.times_published == 2
    assert blood_request.last_published_at == later


def test_repeats_back_off_doubling_up_to_the_cap(hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff)
    start = blood_request.last_published_at
    published_at = []
    # Walk the clock forward a second at a time for three minutes.
    for second in range(1, 181):
        now = start + timedelta(seconds=second)
        if republish_stale_requests(now=now):
            published_at.append(second)

    # +10, then waits of 20, 40, 40, 40 ... (cap 40)
    assert published_at == [10, 30, 70, 110, 150]
    blood_request.refresh_from_db()
    assert blood_request.times_published == 6


def test_a_decided_request_is_not_republished(hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff)
    event = approved_event(blood_request)
    record_approval(data=event.data, event_id=event.id)

    assert republish_stale_requests(now=timezone.now() + timedelta(hours=1)) == 0
    assert len(_requested_events()) == 1


def test_the_periodic_task_works_with_the_default_clock(hospital, staff, settings):
    settings.REQUEST_REPUBLISH_AFTER_SECONDS = 0
    make_request(hospital=hospital, user=staff)

    assert republish_stale_requests() == 1
    assert len(_requested_events()) == 2
