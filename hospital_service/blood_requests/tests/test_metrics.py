"""The hospital's decision figures: counted once, when the decision is applied and committed."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY
from testing_support.factories import approved_event, make_request, rejected_event

from blood_requests.handlers import HANDLERS

pytestmark = pytest.mark.django_db


def _applied(status: str) -> float:
    return REGISTRY.get_sample_value("hospital_decisions_applied_total", {"status": status}) or 0.0


def _latency(suffix: str, status: str) -> float:
    labels = {"priority": "EMERGENCY", "status": status}
    return REGISTRY.get_sample_value(f"hospital_request_decision_seconds_{suffix}", labels) or 0.0


def test_an_applied_decision_counts_once_with_its_end_to_end_latency(
    hospital, staff, django_capture_on_commit_callbacks
):
    blood_request = make_request(hospital=hospital, user=staff, units=2, priority="EMERGENCY")
    blood_request.created_at = timezone.now() - timedelta(seconds=30)
    blood_request.save(update_fields=["created_at"])
    approved, count, total = _applied("APPROVED"), _latency("count", "APPROVED"), _latency("sum", "APPROVED")
    event = approved_event(blood_request)

    with django_capture_on_commit_callbacks(execute=True):
        HANDLERS[event.type](event)
    with django_capture_on_commit_callbacks(execute=True):
        HANDLERS[event.type](event)  # a repeat changes nothing and counts nothing

    assert _applied("APPROVED") == approved + 1
    assert _latency("count", "APPROVED") == count + 1
    assert 30 <= _latency("sum", "APPROVED") - total < 40


def test_a_decision_is_counted_only_when_its_transaction_commits(hospital, staff, django_capture_on_commit_callbacks):
    blood_request = make_request(hospital=hospital, user=staff, priority="EMERGENCY")
    rejected = _applied("REJECTED")
    event = rejected_event(blood_request)

    with django_capture_on_commit_callbacks(execute=False) as at_commit:
        HANDLERS[event.type](event)
    assert _applied("REJECTED") == rejected  # not committed (a rolled-back batch never commits)

    for callback in at_commit:
        callback()
    assert _applied("REJECTED") == rejected + 1
