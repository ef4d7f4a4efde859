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
from blood_requests.lifecycle import UNDECIDED_PACK_STATUSES, InvalidTransition, PackStatus, RequestStatus
from blood_requests.models import BloodRequest, MtpPack, StatusChange
from shared_events import topics
from shared_events.django.outbox import outbox_row, publish
from shared_events.django.prepared import Prepared, insert, insert_together, save_fields, save_fields_and_insert
from shared_events.enums import CancelReason, Indication, Priority, RejectReason, RequestProtocol
from shared_events.schemas import AllocationReleasedV1, BloodApprovedV1, BloodRejectedV2, UnitsDispatchedV1

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
    line = StatusChange(
        request=blood_request, status=target.value, at=at or timezone.now(), detail=detail[:500], event_id=event_id
    )
    save_fields_and_insert(blood_request, ["status", "updated_at", *extra_fields], [line])  # one round trip


def _record_history(
    blood_request: BloodRequest, *, status: str, at: datetime, detail: str, event_id: UUID | None = None
) -> StatusChange:
    """``StatusChange.objects.create(...)`` with its INSERT built once: a line on every event the worker applies."""
    (change,) = insert([StatusChange(request=blood_request, status=status, at=at, detail=detail, event_id=event_id)])
    return change


def requested_payload(blood_request: BloodRequest) -> dict[str, Any]:
    """The ``hospital.blood.requested`` (v2) payload; the same for the first publication and every re-publication."""
    return {
        "request_id": blood_request.id,
        "hospital_id": blood_request.hospital_id,
        "hospital_name": blood_request.hospital.name,
        "blood_group": blood_request.blood_group,
        "protocol": blood_request.protocol,
        "component": blood_request.component,  # None for MTP: the packs say what is sent
        "units": blood_request.units,
        "priority": blood_request.priority,
        "needed_by": blood_request.needed_by,
        "allow_partial": blood_request.allow_partial,
        "authorised_by": blood_request.authorised_by or None,
        "group_confirmed": blood_request.group_confirmed,
        "rhd_negative_required": blood_request.rhd_negative_required,
        "special_requirements": list(blood_request.special_requirements),
        "antigen_negative": list(blood_request.antigen_negative),
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
    priority: str,
    component: str | None = None,
    units: int | None = None,
    protocol: str = RequestProtocol.STANDARD.value,
    needed_by: datetime | None = None,
    allow_partial: bool | None = None,
    authorised_by: str = "",
    group_confirmed: bool = False,
    rhd_negative_required: bool = True,
    special_requirements: list[str] | None = None,
    antigen_negative: list[str] | None = None,
    patient_reference: str = "",
    indication: str = Indication.OTHER.value,
    reason: str = "",
) -> BloodRequest:
    """Store a PENDING request and enqueue ``hospital.blood.requested`` (v2) in one transaction.

    The input is already validated (``BloodRequestCreateSerializer``: transfusion.md sections 5-7).
    ``reason`` is a free-text note kept in this database only; the event carries the ``indication`` code.
    An MTP request has no component or units; its pack 1 is asked for with the request itself (every
    pack may be partly supplied). ``group_confirmed`` defaults to false: the safe choice.
    """
    now = timezone.now()
    mtp = protocol == RequestProtocol.MTP
    if allow_partial is None or mtp:
        allow_partial = True if mtp else default_allow_partial(priority)
    blood_request = BloodRequest(
        hospital=hospital,
        requested_by=user,
        blood_group=blood_group,
        protocol=protocol,
        component=None if mtp else component,
        units=None if mtp else units,
        priority=priority,
        needed_by=needed_by,
        allow_partial=allow_partial,
        authorised_by=authorised_by or "",
        group_confirmed=group_confirmed,
        rhd_negative_required=rhd_negative_required,
        special_requirements=list(dict.fromkeys(special_requirements or [])),
        antigen_negative=list(dict.fromkeys(antigen_negative or [])),
        patient_reference=patient_reference or "",
        indication=indication,
        reason=reason or "",
        status=RequestStatus.PENDING.value,
        created_at=now,
        last_published_at=now,
        times_published=1,
    )
    first = StatusChange(
        request=blood_request,
        status=RequestStatus.PENDING.value,
        at=now,
        detail=f"requested by {user}" + (f", authorised by {authorised_by}" if authorised_by else ""),
    )
    packs = [MtpPack(request=blood_request, number=1, requested_by=user, requested_at=now)] if mtp else []
    subject = str(blood_request.id)
    _, requested = outbox_row(
        topics.REQUESTED, requested_payload(blood_request), subject=subject, correlation_id=subject
    )
    # The request, its first history line, its MTP pack 1 and its event: one statement, so one transaction
    # (the POST's hot path: no BEGIN and COMMIT round trips, each INSERT built once).
    insert_together([blood_request], [first], packs, [requested])
    log.info("blood request %s created (%s)", blood_request.id, blood_request)
    return selectors.with_history(blood_request, [first], packs=packs)


def _locked_request(*, blood_request_id: UUID | str, hospital: Hospital) -> BloodRequest:
    return (
        BloodRequest.objects.select_for_update(of=("self",))  # the request's row only, not its hospital's or user's
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
        if blood_request.status == RequestStatus.MTP_ACTIVE:
            raise InvalidTransition(
                blood_request.status, RequestStatus.CANCELLED, "an active MTP is ended with stop-mtp, not cancelled"
            )
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


class UnknownPack(ValueError):
    """``pack`` names no pack of this request (or is given for a STANDARD request): HTTP 400."""


def can_receive(blood_request: BloodRequest) -> bool:
    """DISPATCHED, or CANCELLED after its units were dispatched and not yet received (section 3)."""
    if blood_request.received_at is not None or not blood_request.dispatched_units:
        return False
    return blood_request.status in (RequestStatus.DISPATCHED, RequestStatus.CANCELLED)


def _check_scan(dispatched: list[dict[str, Any]], dins: list[str]) -> None:
    expected = Counter(unit["din"] for unit in dispatched)
    scanned = Counter(dins)
    if scanned != expected:
        raise ReceiptMismatch(
            unexpected=sorted((scanned - expected).elements()), missing=sorted((expected - scanned).elements())
        )


def _publish_received(
    blood_request: BloodRequest,
    *,
    units: list[dict[str, Any]],
    dins: list[str],
    by: str,
    at: datetime,
    pack: int | None,
) -> None:
    subject = str(blood_request.id)
    publish(
        topics.UNITS_RECEIVED,
        {
            "request_id": blood_request.id,
            "hospital_id": blood_request.hospital_id,
            "pack": pack,
            "dins": sorted(dins),
            "unit_ids": [unit["unit_id"] for unit in units],
            "received_by": by,
            "received_at": at,
        },
        subject=subject,
        correlation_id=subject,
    )


def receive_blood_request(
    *,
    blood_request_id: UUID | str,
    hospital: Hospital,
    user: AbstractBaseUser,
    dins: list[str],
    pack: int | None = None,
) -> BloodRequest:
    """The dispatched units arrived: their scanned ``dins`` (13 characters) must equal the dispatch's as a
    multiset, else ``ReceiptMismatch`` and nothing is recorded. The units enter the local inventory, the
    request becomes FULFILLED (a cancelled one stays CANCELLED), ``hospital.units.received`` is published.

    For an MTP request the receipt is of one ``pack`` (default: the oldest dispatched pack not yet received);
    ``UnknownPack`` for a pack the request does not have, or a ``pack`` given for a STANDARD request.
    """
    with transaction.atomic():
        blood_request = _locked_request(blood_request_id=blood_request_id, hospital=hospital)
        if blood_request.is_mtp:
            return _receive_pack(blood_request, user=user, dins=dins, number=pack)
        if pack is not None:
            raise UnknownPack("a STANDARD request has no packs")
        if not can_receive(blood_request):
            why = "already received" if blood_request.received_at else "the bank has not dispatched its units"
            raise InvalidTransition(blood_request.status, RequestStatus.FULFILLED, f"cannot receive: {why}")
        _check_scan(blood_request.dispatched_units, dins)
        now = timezone.now()
        blood_request.received_at = now
        detail = f"{len(dins)} unit(s) received by {user} (DINs scanned)"
        if blood_request.status == RequestStatus.DISPATCHED:
            _move(blood_request, RequestStatus.FULFILLED, detail=detail, at=now, extra_fields=("received_at",))
        else:  # cancelled after dispatch: stays CANCELLED, but the units are here and each needs a fate
            blood_request.save(update_fields=["received_at", "updated_at"])
            StatusChange.objects.create(request=blood_request, status=blood_request.status, at=now, detail=detail)
        receive_units(hospital=hospital, source_request=blood_request, allocations=blood_request.dispatched_units)
        _publish_received(
            blood_request,
            units=blood_request.dispatched_units,
            dins=dins,
            by=user.get_username(),
            at=now,
            pack=None,
        )
    return blood_request


def _receive_pack(
    blood_request: BloodRequest, *, user: AbstractBaseUser, dins: list[str], number: int | None
) -> BloodRequest:
    packs = list(blood_request.packs.select_for_update().order_by("number"))
    if number is None:
        pack = next((p for p in packs if p.dispatched_units and p.received_at is None), None)
        if pack is None:
            raise InvalidTransition(
                blood_request.status, RequestStatus.FULFILLED, "cannot receive: no pack is dispatched and unreceived"
            )
    else:
        pack = next((p for p in packs if p.number == number), None)
        if pack is None:
            raise UnknownPack(f"this request has no pack {number}")
    if pack.received_at is not None or not pack.dispatched_units:
        why = "already received" if pack.received_at else "the bank has not dispatched it"
        raise InvalidTransition(pack.status, PackStatus.RECEIVED, f"cannot receive pack {pack.number}: {why}")
    _check_scan(pack.dispatched_units, dins)
    now = timezone.now()
    pack.received_at = now
    fields = ["received_at"]
    if lifecycle.can_pack_transition(pack.status, PackStatus.RECEIVED):
        pack.status = PackStatus.RECEIVED.value
        fields.append("status")
    pack.save(update_fields=fields)
    _record_pack_change(blood_request, pack, detail=f"{len(dins)} unit(s) received by {user} (DINs scanned)", at=now)
    receive_units(hospital=blood_request.hospital, source_request=blood_request, allocations=pack.dispatched_units)
    _publish_received(
        blood_request, units=pack.dispatched_units, dins=dins, by=user.get_username(), at=now, pack=pack.number
    )
    _settle_stopped_mtp(blood_request, at=now)
    return blood_request


def record_dispatch(*, data: UnitsDispatchedV1, event_id: UUID | None = None) -> BloodRequest | None:
    """Apply ``bloodbank.units.dispatched``: the units are on their way; the request becomes DISPATCHED.

    It may overtake the approval (another topic): PENDING → DISPATCHED. A cancelled request stays
    CANCELLED and still takes the receipt. A repeat changes nothing. For an MTP request the dispatch is
    of one pack (``pack``); the request stays MTP_ACTIVE.
    """
    with transaction.atomic(savepoint=False):
        blood_request = _request_for_event(data.request_id, data.hospital_id, topics.UNITS_DISPATCHED)
        if blood_request is None:
            return None
        if blood_request.is_mtp:
            _record_pack_dispatch(blood_request, data, event_id)
            return blood_request
        if blood_request.dispatched_units:
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
            save_fields(blood_request, [*fields, "updated_at"])
            _record_history(
                blood_request,
                status=blood_request.status,
                at=data.dispatched_at,
                detail=f"{detail} after the request was {blood_request.status.lower()}: receive them and record "
                "each unit's fate",
                event_id=event_id,
            )
    return blood_request


# -- the bank's decisions (called by handlers, inside the consumer's transaction) --------


# The bank's every event on a request starts here: its SQL is built once (``first()``'s ordering is moot on the pk).
# Only the request's row is locked: a lock on the joined hospital row would make every new request of that
# hospital (its foreign key check takes a KEY SHARE lock on the hospital) wait for this transaction.
_locked_for_event = Prepared(
    lambda request_id: (
        BloodRequest.objects.select_for_update(of=("self",))
        .select_related("hospital")
        .filter(id=request_id)
        .order_by("pk")[:1]
    ),
    request_id=UUID,
)


def _request_for_event(request_id: UUID, hospital_id: UUID, event_type: str) -> BloodRequest | None:
    blood_request = _locked_for_event.first(request_id=request_id)
    if blood_request is None:
        # Another deployment's request, or one from before a reset: nothing here to update.
        log.warning("%s for unknown request %s ignored", event_type, request_id)
        return None
    if blood_request.hospital_id != hospital_id:
        log.warning("%s for request %s names hospital %s, not its own; ignored", event_type, request_id, hospital_id)
        return None
    return blood_request


def record_approval(*, data: BloodApprovedV1, event_id: UUID | None = None) -> BloodRequest | None:
    """Apply ``bloodbank.blood.approved``: PENDING → APPROVED / PARTIALLY_APPROVED (an MTP pack: see below).

    A decision for a request that is no longer PENDING (cancelled first, or a repeat) changes nothing, except
    when the bank's dispatch overtook it (another topic): the approval is then kept without a status change,
    whatever the request became since (DISPATCHED, FULFILLED, or CANCELLED after the dispatch).
    ``uncrossmatched`` (emergency release) and each unit's product code, division and attributes are kept.
    """
    with transaction.atomic(savepoint=False):  # joins the consumer's transaction; a failure undoes it all
        blood_request = _request_for_event(data.request_id, data.hospital_id, topics.APPROVED)
        if blood_request is None:
            return None
        if blood_request.is_mtp:
            _record_pack_decision(blood_request, data.pack, approval=data, event_id=event_id)
            return blood_request
        target = RequestStatus.PARTIALLY_APPROVED if data.partial else RequestStatus.APPROVED
        if blood_request.dispatched_at is not None and blood_request.decided_at is None:
            # The dispatch came first (and the units may be received, or the request cancelled, since): keep the
            # decision (its units, uncrossmatched), no status change.
            _fill_approval(blood_request, data)
            save_fields(blood_request, [*_APPROVAL_FIELDS, "updated_at"])
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


_APPROVAL_FIELDS = (
    "allocations",
    "units_allocated",
    "decided_at",
    "decision_reason_code",
    "decision_detail",
    "uncrossmatched",
)


def _approval_detail(data: BloodApprovedV1) -> str:
    detail = (
        f"{data.units_allocated} of {data.units_requested} unit(s) allocated"
        if data.partial
        else f"all {data.units_allocated} unit(s) allocated"
    )
    return detail + (", UNCROSSMATCHED (emergency release)" if data.uncrossmatched else "")


def _fill_approval(blood_request: BloodRequest, data: BloodApprovedV1) -> None:
    blood_request.allocations = [allocation.model_dump(mode="json") for allocation in data.allocations]
    blood_request.units_allocated = data.units_allocated
    blood_request.decided_at = data.decided_at
    blood_request.decision_reason_code = ""
    blood_request.uncrossmatched = data.uncrossmatched
    blood_request.decision_detail = _approval_detail(data)


def record_rejection(*, data: BloodRejectedV2, event_id: UUID | None = None) -> BloodRequest | None:
    """Apply ``bloodbank.blood.rejected`` (v2, or v1 upgraded by ``rejected_v2``): PENDING → REJECTED;
    ignored once the request left PENDING. An MTP pack's rejection is that pack's decision."""
    with transaction.atomic(savepoint=False):  # joins the consumer's transaction; a failure undoes it all
        blood_request = _request_for_event(data.request_id, data.hospital_id, topics.REJECTED)
        if blood_request is None:
            return None
        if blood_request.is_mtp:
            _record_pack_decision(blood_request, data.pack, rejection=data, event_id=event_id)
            return blood_request
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

    Not a status change (the cancel or the MTP stop already was one); it is kept on the request for the
    dashboard. An MTP pack all of whose units were released becomes RELEASED (a history line says so).
    """
    with transaction.atomic(savepoint=False):  # joins the consumer's transaction; a failure undoes it all
        blood_request = _request_for_event(data.request_id, data.hospital_id, topics.RELEASED)
        if blood_request is None:
            return None
        released = {str(unit_id) for unit_id in blood_request.released_unit_ids}
        released.update(str(unit_id) for unit_id in data.unit_ids)
        blood_request.released_unit_ids = sorted(released)
        blood_request.released_at = data.released_at
        save_fields(blood_request, ["released_unit_ids", "released_at", "updated_at"])
        if blood_request.is_mtp:
            _record_pack_releases(blood_request, data, event_id)
    return blood_request


# -- massive transfusion protocol (transfusion.md section 7) --------------------------------


def _record_pack_change(
    blood_request: BloodRequest,
    pack: MtpPack,
    *,
    detail: str,
    at: datetime | None = None,
    event_id: UUID | None = None,
    decided: bool = False,
) -> None:
    """A line in the request's history for a pack's change; the request's first pack event makes it MTP_ACTIVE."""
    _sync_mtp_totals(blood_request)
    text = f"pack {pack.number}: {detail}"
    totals = (
        "allocations",
        "units_allocated",
        "dispatched_units",
        "dispatched_at",
        "uncrossmatched",
        "decided_at",
        "decision_reason_code",
        "decision_detail",
    )
    if blood_request.status == RequestStatus.PENDING:
        _move(blood_request, RequestStatus.MTP_ACTIVE, detail=text, at=at, event_id=event_id, extra_fields=totals)
        if decided:
            metrics.decision_applied(blood_request)
        return
    save_fields(blood_request, [*totals, "updated_at"])
    _record_history(
        blood_request, status=blood_request.status, at=at or timezone.now(), detail=text[:500], event_id=event_id
    )


def _sync_mtp_totals(blood_request: BloodRequest) -> None:
    """The request's allocations and dispatched units are its packs' together (read by the list and dashboard)."""
    packs = list(blood_request.packs.order_by("number"))
    blood_request.allocations = [a for pack in packs for a in pack.allocations]
    blood_request.units_allocated = sum(pack.units_allocated for pack in packs)
    blood_request.dispatched_units = [u for pack in packs for u in pack.dispatched_units]
    blood_request.dispatched_at = max((p.dispatched_at for p in packs if p.dispatched_at), default=None)
    blood_request.uncrossmatched = any(pack.uncrossmatched for pack in packs)
    blood_request.decided_at = min((p.decided_at for p in packs if p.decided_at), default=None)


# A first pack rejected for these reasons ends the request: the bank decides no further pack of it.
_FINAL_REJECTIONS = frozenset({RejectReason.INVALID_REQUEST, RejectReason.NEEDED_BY_PASSED})


def _record_pack_decision(
    blood_request: BloodRequest,
    number: int | None,
    *,
    approval: BloodApprovedV1 | None = None,
    rejection: BloodRejectedV2 | None = None,
    event_id: UUID | None,
) -> None:
    decision = approval or rejection
    assert decision is not None
    pack = blood_request.packs.select_for_update().filter(number=number or 1).first()
    if pack is None:
        log.warning("decision on unknown pack %s of MTP request %s ignored", number, blood_request.id)
        return
    # The dispatch came first (another topic), and the pack may be received since: keep the decision.
    overtaken = pack.dispatched_at is not None and pack.decided_at is None
    if pack.status not in UNDECIDED_PACK_STATUSES and not overtaken:
        log.info("decision on pack %s of %s ignored: pack is %s", pack.number, blood_request.id, pack.status)
        return
    pack.decided_at = decision.decided_at
    if approval is not None:
        pack.allocations = [allocation.model_dump(mode="json") for allocation in approval.allocations]
        pack.units_requested = approval.units_requested
        pack.units_allocated = approval.units_allocated
        pack.uncrossmatched = approval.uncrossmatched
        pack.decision_reason_code = ""
        pack.decision_detail = _approval_detail(approval)
        target = PackStatus.PARTIALLY_APPROVED if approval.partial else PackStatus.APPROVED
        detail = f"bank approved: {pack.decision_detail}"
    else:
        assert rejection is not None
        pack.decision_reason_code = rejection.reason_code.value
        pack.decision_detail = rejection.detail[:500]
        target = PackStatus.REJECTED
        detail = f"bank rejected: {rejection.reason_code.value}" + (
            f" ({rejection.detail})" if rejection.detail else ""
        )
    if not overtaken:
        lifecycle.ensure_pack_transition(pack.status, target)
        pack.status = target.value
    pack.save()
    if (
        rejection is not None
        and pack.number == 1
        and blood_request.status == RequestStatus.PENDING
        and rejection.reason_code in _FINAL_REJECTIONS
    ):
        blood_request.decision_reason_code = rejection.reason_code.value
        blood_request.decision_detail = rejection.detail[:500]
        blood_request.decided_at = rejection.decided_at
        _move(
            blood_request,
            RequestStatus.REJECTED,
            detail=f"pack 1: {detail}",
            at=decision.decided_at,
            event_id=event_id,
            extra_fields=("decision_reason_code", "decision_detail", "decided_at"),
        )
        metrics.decision_applied(blood_request)
        return
    if pack.number == 1 and blood_request.status == RequestStatus.PENDING:
        blood_request.decision_reason_code = pack.decision_reason_code
        blood_request.decision_detail = pack.decision_detail
    _record_pack_change(blood_request, pack, detail=detail, at=decision.decided_at, event_id=event_id, decided=True)


def _record_pack_dispatch(blood_request: BloodRequest, data: UnitsDispatchedV1, event_id: UUID | None) -> None:
    pack = blood_request.packs.select_for_update().filter(number=data.pack or 1).first()
    if pack is None:
        log.warning("dispatch of unknown pack %s of MTP request %s ignored", data.pack, blood_request.id)
        return
    if pack.dispatched_units:
        return  # a repeat
    pack.dispatched_units = [unit.model_dump(mode="json") for unit in data.units]
    pack.dispatched_at = data.dispatched_at
    if lifecycle.can_pack_transition(pack.status, PackStatus.DISPATCHED):
        pack.status = PackStatus.DISPATCHED.value
    pack.save()
    late = (
        ""
        if blood_request.status in (RequestStatus.PENDING, RequestStatus.MTP_ACTIVE)
        else (f" after the request was {blood_request.status.lower()}: receive them and record each unit's fate")
    )
    _record_pack_change(
        blood_request,
        pack,
        detail=f"bank dispatched {len(data.units)} unit(s){late}",
        at=data.dispatched_at,
        event_id=event_id,
    )


def _record_pack_releases(blood_request: BloodRequest, data: AllocationReleasedV1, event_id: UUID | None) -> None:
    released = {str(unit_id) for unit_id in data.unit_ids}
    for pack in blood_request.packs.select_for_update().order_by("number"):
        ours = {str(a["unit_id"]) for a in pack.allocations}
        now_released = (ours & released) - set(pack.released_unit_ids)
        if not now_released:
            continue
        pack.released_unit_ids = sorted(set(pack.released_unit_ids) | now_released)
        if set(pack.released_unit_ids) >= ours and lifecycle.can_pack_transition(pack.status, PackStatus.RELEASED):
            pack.status = PackStatus.RELEASED.value
        pack.save(update_fields=["released_unit_ids", "status"])
        StatusChange.objects.create(
            request=blood_request,
            status=blood_request.status,
            at=data.released_at,
            detail=f"pack {pack.number}: bank released {len(now_released)} unit(s) ({data.reason})",
            event_id=event_id,
        )


def _locked_active_mtp(*, blood_request_id: UUID | str, hospital: Hospital, action: str) -> BloodRequest:
    blood_request = _locked_request(blood_request_id=blood_request_id, hospital=hospital)
    if not blood_request.is_mtp:
        raise InvalidTransition(blood_request.status, blood_request.status, f"cannot {action}: not an MTP request")
    if blood_request.status != RequestStatus.MTP_ACTIVE or blood_request.mtp_stopped_at is not None:
        state = "stopped" if blood_request.mtp_stopped_at else blood_request.status
        raise InvalidTransition(blood_request.status, blood_request.status, f"cannot {action}: the MTP is {state}")
    return blood_request


def request_next_pack(*, blood_request_id: UUID | str, hospital: Hospital, user: AbstractBaseUser) -> MtpPack:
    """Ask the bank for the next pack of an MTP_ACTIVE request whose last pack is decided
    (``hospital.mtp.pack_requested``, pack = last + 1); else ``InvalidTransition`` (409)."""
    with transaction.atomic():
        blood_request = _locked_active_mtp(
            blood_request_id=blood_request_id, hospital=hospital, action="ask for a pack"
        )
        last = blood_request.packs.select_for_update().order_by("-number").first()
        if last is not None and last.status in UNDECIDED_PACK_STATUSES:
            raise InvalidTransition(
                blood_request.status,
                blood_request.status,
                f"cannot ask for a pack: the bank has not decided pack {last.number} yet",
            )
        now = timezone.now()
        pack = MtpPack.objects.create(
            request=blood_request,
            number=(last.number if last else 0) + 1,
            requested_by=user,
            requested_at=now,
            last_published_at=now,
        )
        _publish_pack_request(pack, username=user.get_username())
        StatusChange.objects.create(
            request=blood_request,
            status=blood_request.status,
            at=now,
            detail=f"pack {pack.number}: requested by {user}",
        )
        blood_request.save(update_fields=["updated_at"])
    return pack


def _publish_pack_request(pack: MtpPack, *, username: str) -> None:
    subject = str(pack.request_id)
    publish(
        topics.MTP_PACK_REQUESTED,
        {
            "request_id": pack.request_id,
            "hospital_id": pack.request.hospital_id,
            "pack": pack.number,
            "requested_by": username,
            "requested_at": pack.requested_at,
        },
        subject=subject,
        correlation_id=subject,
    )


def stop_mtp(*, blood_request_id: UUID | str, hospital: Hospital, user: AbstractBaseUser) -> BloodRequest:
    """Stop an MTP_ACTIVE request: publish ``hospital.mtp.stopped`` (the bank releases what it has not
    dispatched and decides no further pack); a pack not yet decided becomes STOPPED.

    The request is then FULFILLED once every dispatched pack is received, or CANCELLED at once if no pack
    was ever dispatched (nothing reached the patient). A pack the bank dispatched before it saw the stop
    can still be received afterwards.
    """
    with transaction.atomic():
        blood_request = _locked_active_mtp(blood_request_id=blood_request_id, hospital=hospital, action="stop")
        now = timezone.now()
        blood_request.mtp_stopped_at = now
        blood_request.mtp_stopped_by = user
        blood_request.save(update_fields=["mtp_stopped_at", "mtp_stopped_by", "updated_at"])
        blood_request.packs.filter(status=PackStatus.REQUESTED.value).update(status=PackStatus.STOPPED.value)
        subject = str(blood_request.id)
        publish(
            topics.MTP_STOPPED,
            {
                "request_id": blood_request.id,
                "hospital_id": hospital.id,
                "stopped_by": user.get_username(),
                "stopped_at": now,
            },
            subject=subject,
            correlation_id=subject,
        )
        StatusChange.objects.create(
            request=blood_request,
            status=blood_request.status,
            at=now,
            detail=f"MTP stopped by {user}: the bank releases the units it has not dispatched",
        )
        _settle_stopped_mtp(blood_request, at=now)
    return blood_request


def _settle_stopped_mtp(blood_request: BloodRequest, *, at: datetime) -> None:
    """A stopped MTP_ACTIVE request becomes FULFILLED or CANCELLED once no dispatched pack awaits receipt."""
    if blood_request.mtp_stopped_at is None or blood_request.status != RequestStatus.MTP_ACTIVE:
        return
    outcome = lifecycle.mtp_outcome(pack_statuses=list(blood_request.packs.values_list("status", flat=True)))
    if outcome == RequestStatus.FULFILLED:
        blood_request.received_at = at
        _move(
            blood_request,
            outcome,
            detail="MTP stopped and every dispatched pack received",
            at=at,
            extra_fields=("received_at",),
        )
    elif outcome == RequestStatus.CANCELLED:
        _move(blood_request, outcome, detail="MTP stopped before any pack was dispatched: nothing supplied", at=at)


# -- the watchdog -----------------------------------------------------------------------


def republish_stale_requests(*, now: datetime | None = None, batch_size: int = 200) -> int:
    """Publish again, as a new event, every request still PENDING past its back-off; return how many.

    The first repeat comes ``REQUEST_REPUBLISH_AFTER_SECONDS`` after the request, then the
    wait doubles up to ``REQUEST_REPUBLISH_MAX_SECONDS``. The bank's inbox and its
    request-id idempotency make a repeat harmless; it answers a decided request with its
    original decision event, so a lost event on either side is recovered. Undecided MTP packs
    (2 and later) are published again the same way.
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
        republished += _republish_stale_packs(now=now, base=base, cap=cap, batch_size=batch_size)
    if republished:
        log.info("watchdog re-published %d pending request(s)", republished)
    return republished


def _republish_stale_packs(*, now: datetime, base: float, cap: float, batch_size: int) -> int:
    """Publish again every MTP pack (2+) the bank has not decided past its back-off (pack 1 is the request's).

    The bank answers a repeated pack request with its existing decision, so a lost event is recovered.
    """
    republished = 0
    candidates = (
        MtpPack.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("request", "requested_by")
        .filter(
            status=PackStatus.REQUESTED.value,
            number__gte=2,
            request__status=RequestStatus.MTP_ACTIVE.value,
            request__mtp_stopped_at__isnull=True,
            last_published_at__lte=now - timedelta(seconds=base),
        )
        .order_by("last_published_at")[:batch_size]
    )
    for pack in candidates:
        if not lifecycle.is_due_for_republish(
            last_published_at=pack.last_published_at,
            times_published=pack.times_published,
            now=now,
            base_seconds=base,
            cap_seconds=cap,
        ):
            continue
        _publish_pack_request(pack, username=pack.requested_by.get_username())
        pack.times_published += 1
        pack.last_published_at = now
        pack.save(update_fields=["times_published", "last_published_at"])
        republished += 1
    return republished
