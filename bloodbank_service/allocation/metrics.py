"""The bank's decision figures (served by ``/metrics`` with the shared ones)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from prometheus_client import Counter, Histogram

from allocation.models import BankRequest
from shared_events.django.metrics import DECISION_BUCKETS, seconds_since

DECISIONS = Counter(
    "bloodbank_decisions",
    "Decisions made, by outcome (APPROVED, PARTIALLY_APPROVED, REJECTED) and reject reason code.",
    ["outcome", "reason"],
)
DECISION_SECONDS = Histogram(
    "bloodbank_request_decision_seconds",
    "From the request's requested_at (the time in the hospital's requested event) to the bank's decision.",
    ["priority"],
    buckets=DECISION_BUCKETS,
)


def decision_made(
    bank_request: BankRequest,
    *,
    outcome: str | None = None,
    reason: str | None = None,
    started: datetime | None = None,
) -> None:
    """Count ``bank_request``'s decision once its transaction commits (a rolled-back one never happened).

    An MTP pack's decision passes its own ``outcome``, ``reason`` and ``started`` (when it was asked for;
    pack 1: the request's ``requested_at``).
    """
    outcome = outcome or bank_request.status
    reason = (bank_request.reason_code if reason is None else reason) or ""
    priority = bank_request.priority
    started = started or bank_request.requested_at

    def record() -> None:
        DECISIONS.labels(outcome, reason if outcome == "REJECTED" else "").inc()
        if started is not None:
            DECISION_SECONDS.labels(priority).observe(seconds_since(started))

    transaction.on_commit(record)
