"""The bank's decisions: allocate units to requests, re-send decisions, release on cancel.

Entry points (each its own transaction, joining the event handler's):

* ``receive_blood_request`` — a ``hospital.blood.requested`` event: an
  EMERGENCY request is decided at once; a SCHEDULED one is recorded as
  WAITING and decided by ``decide_waiting_requests``, which takes waiting
  EMERGENCY requests before SCHEDULED ones. The worker runs it as soon as its
  consumer has handled everything it fetched (``decide_new_waiting_requests``:
  every EMERGENCY request already here has gone first) and every half second.
  A request already decided gets its original decision event again, byte for
  byte.
* ``cancel_blood_request`` — a ``hospital.blood.cancelled`` event: releases
  the request's units (compensation) or, if the request is not decided yet
  or not even here yet, rejects it with CANCELLED_BEFORE_DECISION.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import datetime
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from inventory.models import Unit, UnitStatus, UnitStatusChange
from inventory.services import refresh_stock

from allocation import compatibility, metrics, pg
from allocation.compatibility import Wanted
from allocation.models import Allocation, BankRequest, RequestStatus
from shared_events import topics
from shared_events.django.outbox import enqueue_message, publish
from shared_events.enums import BloodGroup, Component, Priority, RejectReason
from shared_events.schemas import (
    AllocationReleasedV1,
    BloodApprovedV1,
    BloodCancelledV1,
    BloodRejectedV1,
    BloodRequestedV1,
)
from shared_events.wire import event_headers

log = logging.getLogger(__name__)

SYSTEM_ALLOCATION = "system:allocation"
WAITING_BATCH = 200
WAITING_PER_TRANSACTION = 20
# Set when this process records a WAITING request: a hint for decide_new_waiting_requests
# (a rolled-back one only costs it a query; the periodic run decides everything anyway).
_recorded_waiting = threading.Event()


# -- the requested event ------------------------------------------------------
def receive_blood_request(
    *, request: BloodRequestedV1, correlation_id: str = "", now: datetime | None = None
) -> BankRequest:
    """Record ``request`` and decide it now (EMERGENCY) or soon (SCHEDULED); re-send a decision already made."""
    now = now or timezone.now()
    with transaction.atomic(savepoint=False):
        existing = None
        if connection.vendor != "postgresql" or pg.request_exists_locked(request.request_id):
            existing = BankRequest.objects.select_for_update().filter(pk=request.request_id).first()
        if existing is not None:
            if not existing.requested_at:  # a cancel came first: keep the request's details for the record
                _fill_details(existing, request)
                existing.save()
            if existing.is_decided:
                resend_decision(existing)
            return existing
        bank_request = BankRequest(received_at=now, correlation_id=correlation_id or str(request.request_id))
        _fill_details(bank_request, request)
        if request.priority == Priority.EMERGENCY:
            return decide(bank_request, now=now, created=False)
        bank_request.save(force_insert=True)
        _recorded_waiting.set()
        return bank_request


def _fill_details(bank_request: BankRequest, request: BloodRequestedV1) -> None:
    bank_request.request_id = request.request_id
    bank_request.hospital_id = request.hospital_id
    bank_request.hospital_name = request.hospital_name
    bank_request.blood_group = request.blood_group.value
    bank_request.component = request.component.value
    bank_request.units_requested = request.units
    bank_request.priority = request.priority.value
    bank_request.needed_by = request.needed_by
    bank_request.allow_partial = request.allow_partial
    bank_request.patient_reference = request.patient_reference or ""
    bank_request.indication = request.indication.value if request.indication else None
    bank_request.requested_by = request.requested_by
    bank_request.requested_at = request.requested_at


def resend_decision(bank_request: BankRequest) -> None:
    """Enqueue the request's decision event again, byte for byte, with its original id."""
    enqueue_message(
        topic=topics.topic_name(bank_request.decision_event_type),
        key=str(bank_request.request_id),
        value=bytes(bank_request.decision_event),
        headers=event_headers(),
        event_type=bank_request.decision_event_type,
        event_id=bank_request.decision_event_id,
    )
    log.info("re-sent decision %s for request %s", bank_request.decision_event_id, bank_request.request_id)


def decide_waiting_requests(*, limit: int = WAITING_BATCH, now: datetime | None = None) -> int:
    """Decide waiting requests, EMERGENCY first then oldest first, up to 20 per transaction (in that order).

    Several workers may run this at once: a request being decided elsewhere is
    skipped (SKIP LOCKED). Returns the number decided.
    """
    decided = 0
    while decided < limit:
        with transaction.atomic():
            waiting = list(
                BankRequest.objects.select_for_update(skip_locked=True)
                .filter(status=RequestStatus.WAITING)
                .order_by("priority", "received_at")[: min(WAITING_PER_TRANSACTION, limit - decided)]
            )  # "EMERGENCY" < "SCHEDULED"
            for bank_request in waiting:
                decide(bank_request, now=now or timezone.now(), created=True)
        if not waiting:
            break
        decided += len(waiting)
    return decided


def decide_new_waiting_requests() -> int:
    """``decide_waiting_requests`` if this process recorded a WAITING request since the last call.

    The worker's consumer runs it when it has handled everything it fetched, so
    a SCHEDULED request is decided within milliseconds rather than at the next
    periodic run, and every EMERGENCY request that came before it still goes first.
    """
    if not _recorded_waiting.is_set():
        return 0
    _recorded_waiting.clear()
    return decide_waiting_requests()


# -- the decision -----------------------------------------------------------------
def _validation_error(bank_request: BankRequest, now: datetime) -> tuple[RejectReason, str] | None:
    try:
        Component(bank_request.component)
        BloodGroup(bank_request.blood_group)
        Priority(bank_request.priority)
    except ValueError:
        return RejectReason.INVALID_REQUEST, "unknown component, blood group or priority"
    if not 1 <= (bank_request.units_requested or 0) <= 20:
        return RejectReason.INVALID_REQUEST, "units must be between 1 and 20"
    if bank_request.priority == Priority.SCHEDULED:
        if bank_request.needed_by is None:
            return RejectReason.INVALID_REQUEST, "a SCHEDULED request needs needed_by"
        if bank_request.requested_at and bank_request.needed_by <= bank_request.requested_at:
            return RejectReason.INVALID_REQUEST, "needed_by must be after the request was made"
        if bank_request.needed_by <= now:
            return RejectReason.NEEDED_BY_PASSED, f"needed_by {bank_request.needed_by.isoformat()} has passed"
    return None


def decide(bank_request: BankRequest, *, now: datetime, created: bool) -> BankRequest:
    """Decide ``bank_request`` by the policy of domain.md and publish the decision, atomically.

    Chosen units are locked with ``FOR UPDATE SKIP LOCKED`` (a unit another
    decision holds is simply not a candidate), moved to ALLOCATED, linked by
    an ``Allocation``, and the decision and stock events go to the outbox in
    the same transaction. ``created`` says whether the row already exists.
    """
    with transaction.atomic(savepoint=False):
        problem = _validation_error(bank_request, now)
        if problem is not None:
            return _reject(bank_request, *problem, now=now, created=created)
        wanted = Wanted(
            component=Component(bank_request.component),
            blood_group=BloodGroup(bank_request.blood_group),
            units=bank_request.units_requested,
            priority=Priority(bank_request.priority),
            allow_partial=bool(bank_request.allow_partial),
            needed_by=bank_request.needed_by,
        )
        units, allocated = _lock_units(wanted, now=now)
        verdict = compatibility.outcome(wanted, len(units))
        if verdict in ("INSUFFICIENT_STOCK", "NO_COMPATIBLE_UNITS"):
            detail = (
                f"{len(units)} of {wanted.units} compatible {wanted.component} units available for {wanted.blood_group}"
            )
            return _reject(bank_request, RejectReason(verdict), detail, now=now, created=created)
        return _approve(
            bank_request, units, partial=verdict == "PARTIAL", now=now, created=created, allocated=allocated
        )


def _candidates(wanted: Wanted, now: datetime):
    query = Unit.objects.filter(component=wanted.component, status=UnitStatus.AVAILABLE, expires_at__gt=now)
    if wanted.priority == Priority.SCHEDULED and wanted.needed_by is not None:
        query = query.filter(expires_at__gte=wanted.needed_by)
    return query


def _lock_units(wanted: Wanted, *, now: datetime) -> tuple[list[Unit], bool]:
    """Lock the units the policy takes, in policy order (fewer when stock is short).

    Returns the units and whether they are already marked ALLOCATED (the
    PostgreSQL one-statement path for the common case: enough units of the
    recipient's own group).
    """
    donors = compatibility.compatible_donors(wanted.component, wanted.blood_group)
    if connection.vendor == "postgresql" and wanted.blood_group in donors:
        units = pg.take_identical_units(wanted, now=now)
        if len(units) == wanted.units:
            return units, True
    candidates = _candidates(wanted, now)
    fields = ("id", "din", "component", "blood_group", "expires_at", "batch")

    def take(group: BloodGroup, count: int) -> list[Unit]:
        return list(
            candidates.filter(blood_group=group)
            .select_for_update(skip_locked=True)
            .order_by("expires_at", "din")
            .only(*fields)[:count]
        )

    chosen = take(wanted.blood_group, wanted.units) if wanted.blood_group in donors else []
    if len(chosen) >= wanted.units:
        return chosen, False  # the identical group suffices, no counting needed
    counts = {
        BloodGroup(row["blood_group"]): row["n"]
        for row in candidates.filter(blood_group__in=[d for d in donors if d != wanted.blood_group])
        .values("blood_group")
        .annotate(n=Count("id"))
    }
    for group in compatibility.donor_order(wanted.component, wanted.blood_group, wanted.priority, counts):
        if group == wanted.blood_group or not counts.get(group):
            continue
        chosen.extend(take(group, wanted.units - len(chosen)))
        if len(chosen) >= wanted.units:
            break
    return chosen, False


def _approve(
    bank_request: BankRequest, units: list[Unit], *, partial: bool, now: datetime, created: bool, allocated: bool
) -> BankRequest:
    request_id = bank_request.request_id
    if not allocated:
        Unit.objects.filter(pk__in=[unit.pk for unit in units]).update(status=UnitStatus.ALLOCATED, updated_at=now)
    bank_request.status = RequestStatus.PARTIALLY_APPROVED if partial else RequestStatus.APPROVED
    bank_request.units_allocated = len(units)
    bank_request.detail = (
        f"{len(units)} of {bank_request.units_requested} units allocated" if partial else "all units allocated"
    )
    event = publish(
        topics.APPROVED,
        BloodApprovedV1(
            request_id=request_id,
            hospital_id=bank_request.hospital_id,
            units_requested=bank_request.units_requested,
            units_allocated=len(units),
            partial=partial,
            allocations=[
                {
                    "unit_id": unit.pk,
                    "din": unit.din,
                    "component": unit.component,
                    "blood_group": unit.blood_group,
                    "expires_at": unit.expires_at,
                    "batch": unit.batch,
                }
                for unit in units
            ],
            decided_at=now,
        ),
        subject=str(request_id),
        correlation_id=bank_request.correlation_id or str(request_id),
    )
    reason = f"allocated to {bank_request.hospital_name or bank_request.hospital_id}"
    allocations = [Allocation(request=bank_request, unit=unit, allocated_at=now) for unit in units]
    history = [
        UnitStatusChange(
            unit=unit,
            from_status=UnitStatus.AVAILABLE,
            to_status=UnitStatus.ALLOCATED,
            at=now,
            by=SYSTEM_ALLOCATION,
            reason=reason,
            request_id=request_id,
        )
        for unit in units
    ]
    _save_decision(bank_request, event, now=now, created=created, allocations=allocations, history=history)
    taken = Counter((unit.component, unit.blood_group) for unit in units)
    refresh_stock(deltas={key: -count for key, count in taken.items()}, now=now)
    log.info("request %s %s: %d units", request_id, bank_request.status, len(units))
    return bank_request


def _reject(
    bank_request: BankRequest, reason: RejectReason, detail: str, *, now: datetime, created: bool
) -> BankRequest:
    bank_request.status = RequestStatus.REJECTED
    bank_request.reason_code = reason.value
    bank_request.detail = detail[:500]
    event = publish(
        topics.REJECTED,
        BloodRejectedV1(
            request_id=bank_request.request_id,
            hospital_id=bank_request.hospital_id,
            reason_code=reason,
            detail=bank_request.detail,
            decided_at=now,
        ),
        subject=str(bank_request.request_id),
        correlation_id=bank_request.correlation_id or str(bank_request.request_id),
    )
    _save_decision(bank_request, event, now=now, created=created)
    log.info("request %s rejected: %s", bank_request.request_id, reason)
    return bank_request


def _save_decision(
    bank_request: BankRequest,
    event,
    *,
    now: datetime,
    created: bool,
    allocations: list[Allocation] = (),
    history: list[UnitStatusChange] = (),
) -> None:
    bank_request.decided_at = now
    bank_request.decision_event_id = event.id
    bank_request.decision_event_type = event.type
    bank_request.decision_event = event.to_bytes()
    metrics.decision_made(bank_request)
    if not created and connection.vendor == "postgresql":
        pg.insert_decision(bank_request, list(allocations), list(history))  # one round trip for all rows
        return
    if created:
        bank_request.save()
    else:
        bank_request.save(force_insert=True)
    Allocation.objects.bulk_create(allocations)
    UnitStatusChange.objects.bulk_create(history)


# -- the cancelled event ------------------------------------------------------------
def cancel_blood_request(*, cancel: BloodCancelledV1, correlation_id: str = "", now: datetime | None = None) -> None:
    """Apply a hospital's cancel, whatever the order it arrives in.

    * not here yet → recorded and rejected CANCELLED_BEFORE_DECISION (the
      request, when it arrives, gets that decision again and allocates nothing);
    * waiting → rejected CANCELLED_BEFORE_DECISION;
    * approved → its units are released (back to AVAILABLE, or EXPIRED if
      past expiry) and ``bloodbank.allocation.released`` is published;
    * already cancelled, or rejected → only the cancel is recorded.
    """
    now = now or timezone.now()
    with transaction.atomic(savepoint=False):
        bank_request = BankRequest.objects.select_for_update().filter(pk=cancel.request_id).first()
        if bank_request is not None and bank_request.cancelled_at is not None:
            return  # a repeated cancel changes nothing
        created = bank_request is not None
        if bank_request is None:
            bank_request = BankRequest(
                request_id=cancel.request_id,
                hospital_id=cancel.hospital_id,
                received_at=now,
                correlation_id=correlation_id or str(cancel.request_id),
            )
        bank_request.cancelled_at = cancel.cancelled_at
        bank_request.cancelled_by = cancel.cancelled_by
        bank_request.cancel_reason_code = cancel.reason_code.value if cancel.reason_code else None
        if not bank_request.is_decided:
            _reject(
                bank_request,
                RejectReason.CANCELLED_BEFORE_DECISION,
                "the hospital cancelled the request before the bank decided it",
                now=now,
                created=created,
            )
            return
        bank_request.save(update_fields=["cancelled_at", "cancelled_by", "cancel_reason_code"])
        release_allocations(bank_request=bank_request, reason="CANCELLED", by=cancel.cancelled_by, now=now)


def release_allocations(*, bank_request: BankRequest, reason: str, by: str, now: datetime | None = None) -> list[UUID]:
    """Release the request's live allocations (compensation); publish ``allocation.released``.

    Units still ALLOCATED go back to AVAILABLE, or to EXPIRED if they expired
    meanwhile; ISSUED units are left as they are (transfusion.md section 3).
    Returns the released unit ids (empty: nothing published).
    """
    now = now or timezone.now()
    with transaction.atomic(savepoint=False):
        live = list(
            Allocation.objects.select_for_update()
            .filter(request=bank_request, released_at__isnull=True)
            .select_related("unit")
            .order_by("unit_id")
        )
        if not live:
            return []
        unit_ids = [allocation.unit_id for allocation in live]
        units = {unit.pk: unit for unit in Unit.objects.select_for_update().filter(pk__in=unit_ids).order_by("pk")}
        history = []
        returned: Counter[tuple[str, str]] = Counter()
        # Only units still ALLOCATED are released: an ISSUED unit has left the bank and never comes back
        # to the shelf by a cancel; its allocation stays live until the hospital records its fate.
        live = [allocation for allocation in live if units[allocation.unit_id].status == UnitStatus.ALLOCATED]
        if not live:
            return []
        unit_ids = [allocation.unit_id for allocation in live]
        for allocation in live:
            unit = units[allocation.unit_id]
            allocation.released_at, allocation.release_reason = now, reason
            target = UnitStatus.AVAILABLE if unit.expires_at > now else UnitStatus.EXPIRED
            history.append(
                UnitStatusChange(
                    unit=unit,
                    from_status=unit.status,
                    to_status=target,
                    at=now,
                    by=f"hospital:{by}" if by else SYSTEM_ALLOCATION,
                    reason=f"allocation released: {reason}",
                    request_id=bank_request.request_id,
                )
            )
            returned[unit.stock_key] += target == UnitStatus.AVAILABLE
            unit.status = target
            unit.save(update_fields=["status", "updated_at"])
        Allocation.objects.bulk_update(live, ["released_at", "release_reason"])
        UnitStatusChange.objects.bulk_create(history)
        publish(
            topics.RELEASED,
            AllocationReleasedV1(
                request_id=bank_request.request_id,
                hospital_id=bank_request.hospital_id,
                unit_ids=unit_ids,
                reason=reason,
                released_at=now,
            ),
            subject=str(bank_request.request_id),
            correlation_id=bank_request.correlation_id or str(bank_request.request_id),
        )
        refresh_stock(deltas=returned, now=now)
    log.info("released %d units of request %s (%s)", len(unit_ids), bank_request.request_id, reason)
    return unit_ids
