"""The bank's decision figures: one count per decision made, by outcome and reason, with its latency."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from prometheus_client import REGISTRY

from allocation.services import receive_blood_request
from shared_events.schemas import BloodRequestedV1
from shared_events.testing import requested_payload

pytestmark = pytest.mark.django_db


def _decisions(outcome: str, reason: str = "") -> float:
    return REGISTRY.get_sample_value("bloodbank_decisions_total", {"outcome": outcome, "reason": reason}) or 0.0


def _latency(suffix: str) -> float:
    return REGISTRY.get_sample_value(f"bloodbank_request_decision_seconds_{suffix}", {"priority": "EMERGENCY"}) or 0.0


def _receive(payload: dict) -> None:
    with transaction.atomic():
        receive_blood_request(request=BloodRequestedV1.model_validate(payload))


def test_decisions_are_counted_by_outcome_and_reason_with_their_latency(
    unit_factory, django_capture_on_commit_callbacks
):
    unit_factory.create_batch(2, blood_group="O+")
    approved, short = _decisions("APPROVED"), _decisions("REJECTED", "NO_COMPATIBLE_UNITS")
    count, total = _latency("count"), _latency("sum")
    asked_at = (datetime.now(UTC) - timedelta(seconds=20)).isoformat()
    first = requested_payload(units=2, allow_partial=False, requested_at=asked_at)

    with django_capture_on_commit_callbacks(execute=True):
        _receive(first)
        _receive(first)  # the same request again: its decision is re-sent, not made again
        _receive(requested_payload(units=2, allow_partial=False, requested_at=asked_at))  # no stock left

    assert _decisions("APPROVED") == approved + 1
    assert _decisions("REJECTED", "NO_COMPATIBLE_UNITS") == short + 1
    assert _latency("count") == count + 2
    assert 40 <= _latency("sum") - total < 60
