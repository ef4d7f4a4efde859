"""The request state machine and the watchdog's back-off: pure rules, no Django.

    PENDING ──▶ APPROVED | PARTIALLY_APPROVED | REJECTED | CANCELLED | DISPATCHED
    APPROVED | PARTIALLY_APPROVED ──▶ DISPATCHED | CANCELLED
    DISPATCHED ──▶ FULFILLED (received by DIN scan) | CANCELLED

PENDING → DISPATCHED: the bank's dispatch and approval travel on different topics, so the
dispatch may arrive first. A CANCELLED request whose units were dispatched stays CANCELLED
but still takes their receipt (transfusion.md section 3).

Every status change of a request goes through ``ensure_transition``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum


class RequestStatus(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    PARTIALLY_APPROVED = "PARTIALLY_APPROVED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    DISPATCHED = "DISPATCHED"
    FULFILLED = "FULFILLED"


APPROVED_STATUSES = frozenset({RequestStatus.APPROVED, RequestStatus.PARTIALLY_APPROVED})
OPEN_STATUSES = frozenset({RequestStatus.PENDING, *APPROVED_STATUSES, RequestStatus.DISPATCHED})

TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    RequestStatus.PENDING: frozenset(
        {
            RequestStatus.APPROVED,
            RequestStatus.PARTIALLY_APPROVED,
            RequestStatus.REJECTED,
            RequestStatus.CANCELLED,
            RequestStatus.DISPATCHED,
        }
    ),
    RequestStatus.APPROVED: frozenset({RequestStatus.DISPATCHED, RequestStatus.CANCELLED}),
    RequestStatus.PARTIALLY_APPROVED: frozenset({RequestStatus.DISPATCHED, RequestStatus.CANCELLED}),
    RequestStatus.DISPATCHED: frozenset({RequestStatus.FULFILLED, RequestStatus.CANCELLED}),
    RequestStatus.REJECTED: frozenset(),
    RequestStatus.CANCELLED: frozenset(),
    RequestStatus.FULFILLED: frozenset(),
}


class InvalidTransition(Exception):
    """A status change the state machine does not allow (the API answers 409)."""

    def __init__(self, current: str, target: str, why: str = "") -> None:
        self.current, self.target = current, target
        super().__init__(why or f"a {current} request cannot become {target}")


def can_transition(current: str, target: str) -> bool:
    return RequestStatus(target) in TRANSITIONS[RequestStatus(current)]


def ensure_transition(current: str, target: str) -> None:
    """Raise ``InvalidTransition`` unless ``current → target`` is allowed."""
    if not can_transition(current, target):
        raise InvalidTransition(current, target)


def republish_delay(*, times_published: int, base_seconds: float, cap_seconds: float) -> timedelta:
    """How long after its last publication a still-PENDING request is published again.

    ``base``, then doubling (60 s, 120 s, 240 s, ...) up to ``cap``: a bank that is down
    for an hour is not flooded, and a lost event is recovered within a minute.
    """
    exponent = max(times_published - 1, 0)
    seconds = min(base_seconds * (2 ** min(exponent, 32)), max(cap_seconds, base_seconds))
    return timedelta(seconds=seconds)


def is_due_for_republish(
    *, last_published_at: datetime, times_published: int, now: datetime, base_seconds: float, cap_seconds: float
) -> bool:
    delay = republish_delay(times_published=times_published, base_seconds=base_seconds, cap_seconds=cap_seconds)
    return last_published_at + delay <= now


# An opaque patient reference: a short token such as an MRN or a ward code, never a name.
# Spaces are refused so that "John Smith" cannot be typed in by mistake.
PATIENT_REFERENCE_MAX_LENGTH = 64
_PATIENT_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/#-]*$")


def is_opaque_patient_reference(value: str) -> bool:
    return len(value) <= PATIENT_REFERENCE_MAX_LENGTH and bool(_PATIENT_REFERENCE.match(value))
