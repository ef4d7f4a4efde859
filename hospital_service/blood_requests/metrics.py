"""The hospital's end-to-end figures: a request's decision as the hospital sees it."""

from __future__ import annotations

from django.db import transaction
from prometheus_client import Counter, Histogram

from blood_requests.models import BloodRequest
from shared_events.django.metrics import DECISION_BUCKETS, seconds_since

DECISIONS_APPLIED = Counter(
    "hospital_decisions_applied",
    "Bank decisions applied to a pending request, by the status it moved to.",
    ["status"],
)
REQUEST_DECISION_SECONDS = Histogram(
    "hospital_request_decision_seconds",
    "End to end: from the request's creation (its requested event's requested_at) to the hospital applying "
    "the bank's decision.",
    ["priority", "status"],
    buckets=DECISION_BUCKETS,
)


def decision_applied(blood_request: BloodRequest) -> None:
    """Count the decision and its end-to-end latency once the transaction that applied it commits."""
    status, priority, created_at = blood_request.status, blood_request.priority, blood_request.created_at

    def record() -> None:
        DECISIONS_APPLIED.labels(status).inc()
        REQUEST_DECISION_SECONDS.labels(priority, status).observe(seconds_since(created_at))

    transaction.on_commit(record)
