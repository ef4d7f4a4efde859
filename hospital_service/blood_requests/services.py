"""Writes on blood requests: create, cancel, receive, the bank's decisions, and the watchdog.

Every status change goes through ``_move`` (state machine + audit trail), and every
event is written to the outbox in the same transaction as the change it reports.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from hospitals.models import Hospital
from local_inventory.services import receive_units

from blood_requests import lifecycle, metrics, selectors
from blood_requests.lifecycle import InvalidTransition, RequestStatus
from blood_requests.models import BloodRequest, StatusChange
from shared_events import topics
from shared_events.django.outbox import publish
from shared_events.enums import CancelReason, Indication, Priority
from shared_events.schemas import AllocationReleasedV1, BloodApprovedV1, BloodRejectedV1, UnitsDispatchedV1

log = logging.getLogger(__name__)


def _move(
    blood_request: BloodRequest,
    target: RequestStatus,
    *,
    detail: str,
    at: datetime | None = None,
    event_id: UUID | None = None,
    extra_fields: tuple[str, ...] = (),
) -> None:
    """The one place a request's status changes: checked, saved, recorded in the history."""
    lifecycle.ensure_transition(blood_request.status, target)
    blood_request.status = target.value
    blood_request.save(update_fields=["status", "updated_at", *extra_fields])
    StatusChange.objects.create(
        request=blood_request, status=target.value, at=at or timezone.now(), detail=detail[:500], event_id=event_id
    )


def requested_payload(blood_request: BloodRequest) -> dict[str, Any]:
    """The ``hospital.blood.requested`` payload; the same for the first publication and every re-publication."""
    return {
        "request_id": blood_request.id,
        "hospital_id": blood_request.hospital_id,
        "hospital_name": blood_request.hospital.name,
        "blood_group": blood_request.blood_group,
        "component": blood_request.component,
        "units": blood_request.units,
        "priority": blood_request.priority,
        "needed_by": blood_request.needed_by,
        "allow_partial": blood_request.allow_partial,
        "patient_reference": blood_request.patient_reference or None,
        "indication": blood_request.indication,  # a code: the free-text note (reason) never leaves
        "requested_by": blood_request.requested_by.get_username(),
        "requested_at": blood_request.created_at,
    }


def default_allow_partial(priority: str) -> bool:
    """An emergency takes what there is; a scheduled request is all-or-nothing unless asked."""
    return priority == Priority.EMERGENCY


def create_blood_request(
    *,
    hospital: Hospital,
    user: AbstractBaseUser,
    blood_group: str,
    component: str,
    units: int,
    priority: str,
    needed_by: datetime | None = None,
    allow_partial: bool | None = None,
    patient_reference: str = "",
    indication: str = Indication.OTHER.value,
    reason: str = "",
) -> BloodRequest:
    """Store a PENDING request and enqueue ``hospital.blood.requested`` in one transaction.

    The input is already validated (``BloodRequestCreateSerializer``). ``reason`` is a free-text
    note kept in this database only; the event carries the ``indication`` code.
    """
    now = timezone.now()
    with transaction.atomic():
        blood_request = BloodRequest.objects.create(
            hospital=hospital,
            requested_by=user,
            blood_group=blood_group,
            component=component,
            units=units,
            priority=priority,
            needed_by=needed_by,
            allow_partial=default_allow_partial(priority) if allow_partial is None else allow_partial,
            patient_reference=patient_reference or "",
            indication=indication,
            reason=reason or "",
            status=RequestStatus.PENDING.value,
            created_at=now,
            last_published_at=now,
            times_published=1,
        )
        first = StatusChange.objects.create(
            request=blood_request, status=RequestStatus.PENDING.value, at=now, detail=f"requested by {user}"
        )
        subject = str(blood_request.id)
        publish(topics.REQUESTED, requested_payload(blood_request), subject=subject, correlation_id=subject)
    log.info("blood request %s created (%s)", blood_request.id, blood_request)
    return selectors.with_history(blood_request, [first])


def _locked_request(*, blood_request_id: UUID | str, hospital: Hospital) -> BloodRequest:
    return (
        BloodRequest.objects.select_for_update()
        .select_related("hospital", "requested_by")
        .get(id=blood_request_id, hospital=hospital)
    )


def cancel_blood_request(
    *,
    blood_request_id: UUID | str,
    hospital: Hospital,
    user: AbstractBaseUser,
    reason: str = "",
    reason_code: str = CancelReason.OTHER.value,
) -> BloodRequest:
    """Cancel a PENDING, approved or DISPATCHED request and publish ``hospital.blood.cancelled`` with
    ``reason_code`` (the free-text ``reason`` stays in this database).

    Raises ``BloodRequest.DoesNotExist`` (another hospital's too) or ``InvalidTransition``.
    """
    with transaction.atomic():
        blood_request = _locked_request(blood_request_id=blood_request_id, hospital=hospital)
        now = timezone.now()
        blood_request.cancel_reason = reason[:500]
        blood_request.cancel_reason_code = reason_code
        blood_request.cancelled_by = user
        _move(
            blood_request,
            RequestStatus.CANCELLED,
            detail=f"cancelled by {user}" + (f": {reason}" if reason else ""),
            at=now,
            extra_fields=("cancel_reason", "cancel_reason_code", "cancelled_by"),
        )
        subject = str(blood_request.id)
        publish(
            topics.CANCELLED,
            {
                "request_id": blood_request.id,
                "hospital_id": hospital.id,
                "reason_code": reason_code,
                "cancelled_by": user.get_username(),
                "cancelled_at": now,
            },
            subject=subject,
            correlation_id=subject,
        )
    return blood_request


def outstanding_allocations(blood_request: BloodRequest) -> list[dict[str, Any]]:
    """The allocated units the bank has not released since."""
    released = {str(unit_id) for unit_id in blood_request.released_unit_ids}
    return [a for a in blood_request.allocations if str(a["unit_id"]) not in released]


class ReceiptMismatch(Exception):
    """The scanned DINs are not the dispatched ones: nothing is recorded (HTTP 409 with the lists)."""

    def __init__(self, *, unexpected: list[str], missing: list[str]) -> None:
        self.unexpected_dins, self.missing_dins = unexpected, missing
        super().__init__("the scanned DINs do not match the dispatched units")


def can_receive(blood_request: BloodRequest) -> bool:
    """DISPATCHED, or CANCELLED after its units were dispatched and not yet received (section 3)."""
    if blood_request.received_at is not None or not blood_request.dispatched_units:
        return False
    return blood_request.status in (RequestStatus.DISPATCHED, RequestStatus.CANCELLED)


def receive_blood_request(
    *, blood_request_id: UUID | str, hospital: Hospital, user: AbstractBaseUser, dins: list[str]
) -> BloodRequest:
    """The dispatched units arrived: their scanned ``dins`` (13 characters) must equal the dispatch's as a
    multiset, else ``ReceiptMismatch`` and nothing is recorded. The units enter the local inventory, the
    request becomes FULFILLED (a cancelled one stays CANCELLED), ``hospital.units.received`` is published.
    """
    with transaction.atomic():
        blood_request = _locked_request(blood_request_id=blood_request_id, hospital=hospital)
        if not can_receive(blood_request):
            why = "already received" if blood_request.received_at else "the bank has not dispatched its units"
            raise InvalidTransition(blood_request.status, RequestStatus.FULFILLED, f"cannot receive: {why}")
        expected = Counter(unit["din"] for unit in blood_request.dispatched_units)
        scanned = Counter(dins)
        if scanned != expected:
            raise ReceiptMismatch(
                unexpected=sorted((scanned - expected).elements()), missing=sorted((expected - scanned).elements())
            )
        now = timezone.now()
        blood_request.received_at = now
        detail = f"{len(dins)} unit(s) received by {user} (DINs scanned)"
        if blood_request.status == RequestStatus.DISPATCHED:
            _move(blood_request, RequestStatus.FULFILLED, detail=detail, at=now, extra_fields=("received_at",))
        else:  # cancelled after dispatch: stays CANCELLED, but the units are here and each needs a fate
            blood_request.save(update_fields=["received_at", "updated_at"])
            StatusChange.objects.create(request=blood_request, status=blood_request.status, at=now, detail=detail)
        receive_units(hospital=hospital, source_request=blood_request, allocations=blood_request.dispatched_units)
        subject = str(blood_request.id)
        publish(
            topics.UNITS_RECEIVED,
            {
                "request_id": blood_request.id,
                "hospital_id": hospital.id,
                "dins": sorted(dins),
                "unit_ids": [unit["unit_id"] for unit in blood_request.dispatched_units],
                "received_by": user.get_username(),
                "received_at": now,
            },
            subject=subject,
            correlation_id=subject,
        )
    return blood_request


def record_dispatch(*, data: UnitsDispatchedV1, event_id: UUID | None = None) -> BloodRequest | None:
    """Apply ``bloodbank.units.dispatched``: the units are on their way; the request becomes DISPATCHED.

    It may overtake the approval (another topic): PENDING → DISPATCHED. A cancelled request stays
    CANCELLED and still takes the receipt. A repeat changes nothing.
    """
    with transaction.atomic(savepoint=False):
        blood_request = _request_for_event(data.request_id, data.hospital_id, topics.UNITS_DISPATCHED)
        if blood_request is None or blood_request.dispatched_units:
            return blood_request
        blood_request.dispatched_units = [unit.model_dump(mode="json") for unit in data.units]
        blood_request.dispatched_at = data.dispatched_at
        detail = f"bank dispatched {len(data.units)} unit(s)"
        fields = ("dispatched_units", "dispatched_at")
        if lifecycle.can_transition(blood_request.status, RequestStatus.DISPATCHED):
            _move(
                blood_request,
                RequestStatus.DISPATCHED,
                detail=detail,
                at=data.dispatched_at,
                event_id=event_id,
                extra_fields=fields,
            )
        else:
            blood_request.save(update_fields=[*fields, "updated_at"])
            StatusChange.objects.create(
                request=blood_request,
                status=blood_request.status,
                at=data.dispatched_at,
                detail=f"{detail} after the request was {blood_request.status.lower()}: receive them and record "
                "each unit's fate",
                event_id=event_id,
            )
    return blood_request


# -- the bank's decisions (called by handlers, inside the consumer's transaction) --------


def _request_for_event(request_id: UUID, hospital_id: UUID, event_type: str) -> BloodRequest | None:
    blood_request = BloodRequest.objects.select_for_update().select_related("hospital").filter(id=request_id).first()
    if blood_request is None:
        # Another deployment's request, or one from before a reset: nothing here to update.
        log.warning("%s for unknown request %s ignored", event_type, request_id)
        return None
    if blood_request.hospital_id != hospital_id:
        log.warning("%s for request %s names hospital %s, not its own; ignored", event_type, request_id, hospital_id)
        return None
    return blood_request


def record_approval(*, data: BloodApprovedV1, event_id: UUID | None = None) -> BloodRequest | None:
    """Apply ``bloodbank.blood.approved``: PENDING → APPROVED / PARTIALLY_APPROVED.

    A decision for a request that is no longer PENDING (cancelled first, or a repeat) changes nothing.
    """
    with transaction.atomic(savepoint=False):  # joins the consumer's transaction; a failure undoes it all
        blood_request = _request_for_event(data.request_id, data.hospital_id, topics.APPROVED)
        if blood_request is None:
            return None
        target = RequestStatus.PARTIALLY_APPROVED if data.partial else RequestStatus.APPROVED
        if blood_request.status == RequestStatus.DISPATCHED and blood_request.decided_at is None:
            _fill_approval(blood_request, data)  # the dispatch came first: keep the decision, no status change
            blood_request.save(update_fields=[*_APPROVAL_FIELDS, "updated_at"])
            return blood_request
        if blood_request.status != RequestStatus.PENDING:
            log.info("approval of %s ignored: request is %s", blood_request.id, blood_request.status)
            return blood_request
        _fill_approval(blood_request, data)
        _move(
            blood_request,
            target,
            detail=f"bank approved: {blood_request.decision_detail}",
            at=data.decided_at,
            event_id=event_id,
            extra_fields=_APPROVAL_FIELDS,
        )
        metrics.decision_applied(blood_request)
    return blood_request


_APPROVAL_FIELDS = ("allocations", "units_allocated", "decided_at", "decision_reason_code", "decision_detail")


def _fill_approval(blood_request: BloodRequest, data: BloodApprovedV1) -> None:
    blood_request.allocations = [allocation.model_dump(mode="json") for allocation in data.allocations]
    blood_request.units_allocated = data.units_allocated
    blood_request.decided_at = data.decided_at
    blood_request.decision_reason_code = ""
    blood_request.decision_detail = (
        f"{data.units_allocated} of {data.units_requested} unit(s) allocated"
        if data.partial
        else f"all {data.units_allocated} unit(s) allocated"
    )


def record_rejection(*, data: BloodRejectedV1, event_id: UUID | None = None) -> BloodRequest | None:
    """Apply ``bloodbank.blood.rejected``: PENDING → REJECTED; ignored once the request left PENDING."""
    with transaction.atomic(savepoint=False):  # joins the consumer's transaction; a failure undoes it all
        blood_request = _request_for_event(data.request_id, data.hospital_id, topics.REJECTED)
        if blood_request is None:
            return None
        if blood_request.status != RequestStatus.PENDING:
            log.info("rejection of %s ignored: request is %s", blood_request.id, blood_request.status)
            return blood_request
        blood_request.decision_reason_code = data.reason_code.value
        blood_request.decision_detail = data.detail[:500]
        blood_request.decided_at = data.decided_at
        _move(
            blood_request,
            RequestStatus.REJECTED,
            detail=f"bank rejected: {data.reason_code.value}" + (f" ({data.detail})" if data.detail else ""),
            at=data.decided_at,
            event_id=event_id,
            extra_fields=("decision_reason_code", "decision_detail", "decided_at"),
        )
        metrics.decision_applied(blood_request)
    return blood_request


def record_allocation_released(*, data: AllocationReleasedV1, event_id: UUID | None = None) -> BloodRequest | None:
    """Apply ``bloodbank.allocation.released``: those units are no longer ours to receive.

    Not a status change (the cancel already was one); it is kept on the request for the dashboard.
    """
    with transaction.atomic(savepoint=False):  # joins the consumer's transaction; a failure undoes it all
        blood_request = _request_for_event(data.request_id, data.hospital_id, topics.RELEASED)
        if blood_request is None:
            return None
        released = {str(unit_id) for unit_id in blood_request.released_unit_ids}
        released.update(str(unit_id) for unit_id in data.unit_ids)
        blood_request.released_unit_ids = sorted(released)
        blood_request.released_at = data.released_at
        blood_request.save(update_fields=["released_unit_ids", "released_at", "updated_at"])
    return blood_request


# -- the watchdog -----------------------------------------------------------------------


def republish_stale_requests(*, now: datetime | None = None, batch_size: int = 200) -> int:
    """Publish again, as a new event, every request still PENDING past its back-off; return how many.

    The first repeat comes ``REQUEST_REPUBLISH_AFTER_SECONDS`` after the request, then the
    wait doubles up to ``REQUEST_REPUBLISH_MAX_SECONDS``. The bank's inbox and its
    request-id idempotency make a repeat harmless; it answers a decided request with its
    original decision event, so a lost event on either side is recovered.
    """
    base = float(settings.REQUEST_REPUBLISH_AFTER_SECONDS)
    cap = float(settings.REQUEST_REPUBLISH_MAX_SECONDS)
    now = now or timezone.now()
    republished = 0
    with transaction.atomic():
        # Only rows past the shortest possible wait are read; SKIP LOCKED lets replicas share.
        candidates = (
            BloodRequest.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("hospital", "requested_by")
            .filter(status=RequestStatus.PENDING.value, last_published_at__lte=now - timedelta(seconds=base))
            .order_by("last_published_at")[:batch_size]
        )
        for blood_request in candidates:
            if not lifecycle.is_due_for_republish(
                last_published_at=blood_request.last_published_at,
                times_published=blood_request.times_published,
                now=now,
                base_seconds=base,
                cap_seconds=cap,
            ):
                continue
            subject = str(blood_request.id)
            publish(topics.REQUESTED, requested_payload(blood_request), subject=subject, correlation_id=subject)
            blood_request.times_published += 1
            blood_request.last_published_at = now
            blood_request.save(update_fields=["times_published", "last_published_at"])
            republished += 1
    if republished:
        log.info("watchdog re-published %d pending request(s)", republished)
    return republished
