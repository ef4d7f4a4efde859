"""The request state machine and the watchdog's back-off: pure rules, no Django.

    PENDING ──▶ APPROVED | PARTIALLY_APPROVED | REJECTED | CANCELLED | DISPATCHED
    APPROVED | PARTIALLY_APPROVED ──▶ DISPATCHED | CANCELLED
    DISPATCHED ──▶ FULFILLED (received by DIN scan) | CANCELLED
    PENDING ──▶ MTP_ACTIVE (an MTP request, from its pack 1's decision or dispatch)
    MTP_ACTIVE ──▶ FULFILLED (stopped, every dispatched pack received)
                 | CANCELLED (stopped before any pack was dispatched: nothing was supplied)

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
    MTP_ACTIVE = "MTP_ACTIVE"


APPROVED_STATUSES = frozenset({RequestStatus.APPROVED, RequestStatus.PARTIALLY_APPROVED})
OPEN_STATUSES = frozenset(
    {RequestStatus.PENDING, *APPROVED_STATUSES, RequestStatus.DISPATCHED, RequestStatus.MTP_ACTIVE}
)

TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    RequestStatus.PENDING: frozenset(
        {
            RequestStatus.APPROVED,
            RequestStatus.PARTIALLY_APPROVED,
            RequestStatus.REJECTED,
            RequestStatus.CANCELLED,
            RequestStatus.DISPATCHED,
            RequestStatus.MTP_ACTIVE,
        }
    ),
    RequestStatus.APPROVED: frozenset({RequestStatus.DISPATCHED, RequestStatus.CANCELLED}),
    RequestStatus.PARTIALLY_APPROVED: frozenset({RequestStatus.DISPATCHED, RequestStatus.CANCELLED}),
    RequestStatus.DISPATCHED: frozenset({RequestStatus.FULFILLED, RequestStatus.CANCELLED}),
    RequestStatus.REJECTED: frozenset(),
    RequestStatus.CANCELLED: frozenset(),
    RequestStatus.FULFILLED: frozenset(),
    RequestStatus.MTP_ACTIVE: frozenset({RequestStatus.FULFILLED, RequestStatus.CANCELLED}),
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


class PackStatus(StrEnum):
    """One MTP pack (transfusion.md section 7): requested, decided by the bank, dispatched, received.

    REQUESTED ──▶ APPROVED | PARTIALLY_APPROVED | REJECTED | DISPATCHED (the dispatch overtook the decision)
                | STOPPED (the MTP was stopped before the bank decided it)
    APPROVED | PARTIALLY_APPROVED ──▶ DISPATCHED | RELEASED (the bank released its units: MTP stopped)
    STOPPED ──▶ APPROVED | PARTIALLY_APPROVED | REJECTED | DISPATCHED (decided before the bank saw the stop)
    DISPATCHED ──▶ RECEIVED (by DIN scan)
    """

    REQUESTED = "REQUESTED"
    APPROVED = "APPROVED"
    PARTIALLY_APPROVED = "PARTIALLY_APPROVED"
    REJECTED = "REJECTED"
    DISPATCHED = "DISPATCHED"
    RECEIVED = "RECEIVED"
    RELEASED = "RELEASED"
    STOPPED = "STOPPED"


_DECIDED_FROM_WAITING = frozenset(
    {PackStatus.APPROVED, PackStatus.PARTIALLY_APPROVED, PackStatus.REJECTED, PackStatus.DISPATCHED}
)
PACK_TRANSITIONS: dict[PackStatus, frozenset[PackStatus]] = {
    PackStatus.REQUESTED: _DECIDED_FROM_WAITING | {PackStatus.STOPPED},
    PackStatus.STOPPED: _DECIDED_FROM_WAITING,
    PackStatus.APPROVED: frozenset({PackStatus.DISPATCHED, PackStatus.RELEASED}),
    PackStatus.PARTIALLY_APPROVED: frozenset({PackStatus.DISPATCHED, PackStatus.RELEASED}),
    PackStatus.DISPATCHED: frozenset({PackStatus.RECEIVED}),
    PackStatus.REJECTED: frozenset(),
    PackStatus.RECEIVED: frozenset(),
    PackStatus.RELEASED: frozenset(),
}
UNDECIDED_PACK_STATUSES = frozenset({PackStatus.REQUESTED, PackStatus.STOPPED})
"""The bank has not decided the pack (yet): a decision event for it is applied."""


def can_pack_transition(current: str, target: str) -> bool:
    return PackStatus(target) in PACK_TRANSITIONS[PackStatus(current)]


def ensure_pack_transition(current: str, target: str) -> None:
    if not can_pack_transition(current, target):
        raise InvalidTransition(current, target, f"a {current} pack cannot become {target}")


def mtp_outcome(*, pack_statuses: list[str]) -> RequestStatus | None:
    """What a stopped MTP request becomes, or None while a dispatched pack still awaits its receipt.

    FULFILLED once every dispatched pack was received; CANCELLED when none was ever dispatched
    (the bank released every allocated unit: nothing reached the patient).
    """
    if any(status == PackStatus.DISPATCHED for status in pack_statuses):
        return None
    if any(status == PackStatus.RECEIVED for status in pack_statuses):
        return RequestStatus.FULFILLED
    return RequestStatus.CANCELLED


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


# The authorising clinician travels to the bank (``hospital.blood.requested`` v2): a person's name or a
# username, so letters (any script), spaces and . ' - _ only. No digits: a date of birth, an NHS or record
# number, a phone number cannot be written there (issue 17: free text naming a patient must not travel).
_CLINICIAN = re.compile(r"^[^\W\d_](?:[^\W\d]|[ .'\u2019-])*$")


def is_clinician_name(value: str) -> bool:
    return bool(_CLINICIAN.match(value))
