"""The bank's decisions: allocate units to requests, re-send decisions, release on cancel.

Entry points (each its own transaction, joining the event handler's):

* ``receive_blood_request`` — a ``hospital.blood.requested`` event: an
  EMERGENCY request is decided at once; a SCHEDULED one is recorded as
  WAITING and decided by ``decide_waiting_requests``, which takes waiting
  EMERGENCY requests before SCHEDULED ones. The worker runs it as soon as its
  consumer has handled everything it fetched, in that batch's transaction
  (``decide_new_waiting_requests``: every EMERGENCY request already here has
  gone first), and every half second.
  A request already decided gets its original decision event again, byte for
  byte.
* ``cancel_blood_request`` — a ``hospital.blood.cancelled`` event: releases
  the request's units (compensation) or, if the request is not decided yet
  or not even here yet, rejects it with CANCELLED_BEFORE_DECISION.
* ``request_mtp_pack`` / ``stop_mtp`` — ``hospital.mtp.pack_requested`` and
  ``hospital.mtp.stopped`` (transfusion.md section 7): an MTP request's pack 1
  is decided on arrival, pack N when asked for, each with its own decision
  event (re-sent byte for byte when asked again); a stop releases the units
  not yet dispatched (MTP_STOPPED) and no further pack is allocated.

The policy itself (which groups, in which order, which attributes) is in
``allocation.compatibility``; this module locks rows and writes events.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from uuid import UUID

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Count
from django.utils import timezone
from inventory.models import Unit, UnitStatus, UnitStatusChange
from inventory.services import refresh_stock_at_batch_end

from allocation import compatibility, metrics, pg
from allocation.compatibility import DonorStep, PackRecipe, RequestShape, Wanted
from allocation.models import Allocation, BankRequest, MtpPack, RequestStatus
from shared_events import topics
from shared_events.django import batch
from shared_events.django.outbox import buffered, enqueue_message, publish
from shared_events.django.prepared import Prepared
from shared_events.enums import UNKNOWN_GROUP, BloodGroup, Component, Priority, RejectReason
from shared_events.schemas import (
    AllocationReleasedV1,
    BloodApprovedV1,
    BloodCancelledV1,
    BloodRejectedV2,
    BloodRequestedV1,
    BloodRequestedV2,
    MtpPackRequestedV1,
    MtpStoppedV1,
    requested_v2,
)
from shared_events.wire import event_headers

log = logging.getLogger(__name__)

SYSTEM_ALLOCATION = "system:allocation"
WAITING_BATCH = 200
WAITING_PER_TRANSACTION = 20
# Set when this process records a WAITING request: a hint for decide_new_waiting_requests
# (a rolled-back one only costs it a query; the periodic run decides everything anyway).
_recorded_waiting = threading.Event()
# Waiting requests whose decision failed, and when (time.monotonic) each is tried again: the others go on.
SET_ASIDE_SECONDS = 60.0
_set_aside_until: dict[UUID, float] = {}


class RefusedEvent(Exception):
    """An MTP event that does not fit the bank's records (no such MTP request of that hospital): dead-lettered."""


_request_locked = Prepared(
    lambda request_id: BankRequest.objects.select_for_update().filter(pk=request_id).order_by("pk")[:1],
    request_id=UUID,
)


@cache
def _waiting_locked(count: int) -> Prepared[BankRequest]:
    """The next ``count`` waiting requests not locked elsewhere: EMERGENCY first ("EMERGENCY" < "SCHEDULED"),
    then oldest first (one compiled query per count: nearly always WAITING_PER_TRANSACTION).
    """
    return Prepared(
        lambda: (
            BankRequest.objects.select_for_update(skip_locked=True)
            .filter(status=RequestStatus.WAITING)
            .order_by("priority", "received_at")[:count]
        )
    )


# -- the requested event ------------------------------------------------------
def receive_blood_request(
    *, request: BloodRequestedV1 | BloodRequestedV2, correlation_id: str = "", now: datetime | None = None
) -> BankRequest:
    """Record ``request`` (either major) and decide it now (EMERGENCY) or soon (SCHEDULED).

    A request already decided gets its decision event again (an MTP request: pack 1's).
    """
    now = now or timezone.now()
    request = requested_v2(request)
    with transaction.atomic(savepoint=False):
        existing = None
        if connection.vendor != "postgresql" or _exists_locked(request.request_id):
            existing = _request_locked.first(request_id=request.request_id)
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


@dataclass
class _BatchRequests:
    asked: set[UUID]  # the batch's requests no other event of it names
    existing: set[UUID]  # those of them the bank already has (their rows locked)


def _exists_locked(request_id: UUID) -> bool:
    """Whether the bank has this request (its row then locked): one statement for a consumer batch's requests.

    In a batch, the first requested event looks up every request of the batch that no other
    event of it names; a request named twice (a repeat, a cancel in the same batch, which
    may create the row before its request comes) is looked up when its turn comes.
    """
    found = batch.shared("allocation.batch-requests", _batch_requests)
    if found is None or request_id not in found.asked:
        return pg.request_exists_locked(request_id)
    return request_id in found.existing


def _batch_requests() -> _BatchRequests:
    named = Counter(getattr(event.data, "request_id", None) for event in batch.events())
    asked = {
        event.data.request_id
        for event in batch.events()
        if event.type == topics.REQUESTED and named[event.data.request_id] == 1
    }
    return _BatchRequests(asked, pg.existing_requests_locked(list(asked)) if asked else set())


def _fill_details(bank_request: BankRequest, request: BloodRequestedV2) -> None:
    bank_request.request_id = request.request_id
    bank_request.hospital_id = request.hospital_id
    bank_request.hospital_name = request.hospital_name
    bank_request.blood_group = str(request.blood_group)
    bank_request.protocol = request.protocol.value
    bank_request.component = request.component.value if request.component else ""
    bank_request.units_requested = request.units
    bank_request.authorised_by = request.authorised_by or ""
    bank_request.group_confirmed = request.group_confirmed
    bank_request.rhd_negative_required = request.rhd_negative_required
    bank_request.special_requirements = [str(requirement) for requirement in request.special_requirements]
    bank_request.antigen_negative = list(request.antigen_negative)
    bank_request.uncrossmatched = request.group_unknown
    bank_request.priority = request.priority.value
    bank_request.needed_by = request.needed_by
    bank_request.allow_partial = request.allow_partial
    bank_request.patient_reference = request.patient_reference or ""
    bank_request.indication = request.indication.value if request.indication else None
    bank_request.requested_by = request.requested_by
    bank_request.requested_at = request.requested_at


def resend_decision(decided: BankRequest | MtpPack) -> None:
    """Enqueue a request's (or an MTP pack's) decision event again, byte for byte, with its original id."""
    request_id = decided.request_id
    enqueue_message(
        topic=topics.topic_name(decided.decision_event_type),
        key=str(request_id),
        value=bytes(decided.decision_event),
        headers=event_headers(),
        event_type=decided.decision_event_type,
        event_id=decided.decision_event_id,
    )
    log.info("re-sent decision %s for request %s", decided.decision_event_id, request_id)


def decide_waiting_requests(*, limit: int = WAITING_BATCH, now: datetime | None = None) -> int:
    """Decide waiting requests, EMERGENCY first then oldest first, up to 20 per transaction (in that order).

    Several workers may run this at once: a request being decided elsewhere is
    skipped (SKIP LOCKED). Returns the number decided.

    A request whose decision fails (anything but the database being unavailable)
    must not hold up every request behind it: the transaction rolls back, the rest
    of the run goes one request per transaction, and the one that fails is logged
    as an error and set aside for ``SET_ASIDE_SECONDS`` (then tried again). In a
    consumer batch's transaction the failure is the batch's: it is retried event by
    event and the task then runs here on its own (``decide_new_waiting_requests``).
    """
    decided, per_transaction, failed = 0, WAITING_PER_TRANSACTION, set()
    while decided < limit:
        count, trying = min(per_transaction, limit - decided), []
        try:
            # The decisions' outbox rows go in together at the end of the transaction, as the consumer's do.
            # In a consumer batch's transaction (decide_new_waiting_requests) all three join the batch's.
            with transaction.atomic(savepoint=False), buffered(), batch.scope():  # a key's stock refreshed once
                waiting = _next_waiting(count, failed)
                for bank_request in waiting:
                    trying.append(bank_request.request_id)
                    decide(bank_request, now=now or timezone.now(), created=True)
        except (OperationalError, InterfaceError):
            raise  # the database is unavailable: nothing is to blame on a request
        except Exception:
            if connection.in_atomic_block or not trying:
                raise
            if per_transaction > 1:
                per_transaction = 1  # one at a time, to find the request that fails
            else:
                _set_aside(trying[-1])
                failed.add(trying[-1])  # not tried again in this run, whatever SET_ASIDE_SECONDS says
            continue
        decided += len(waiting)
        if len(waiting) < count:
            break  # fewer than asked for: none was left (no empty transaction to find that out)
    return decided


def _next_waiting(count: int, failed: set[UUID]) -> list[BankRequest]:
    """The next ``count`` waiting requests (locked), leaving out those set aside and those that ``failed``."""
    now = time.monotonic()
    for request_id in [request_id for request_id, until in _set_aside_until.items() if until <= now]:
        del _set_aside_until[request_id]  # its time is up: tried again
    left_out = failed | set(_set_aside_until)
    if not left_out:
        return _waiting_locked(count).all()  # nearly always: one statement built once
    return list(
        BankRequest.objects.select_for_update(skip_locked=True)
        .filter(status=RequestStatus.WAITING)
        .exclude(pk__in=left_out)
        .order_by("priority", "received_at")[:count]
    )


def _set_aside(request_id: UUID) -> None:
    log.exception("waiting request %s could not be decided: set aside for %.0f s", request_id, SET_ASIDE_SECONDS)
    _set_aside_until[request_id] = time.monotonic() + SET_ASIDE_SECONDS


def decide_new_waiting_requests() -> int:
    """``decide_waiting_requests`` (up to one transaction's worth) if this process recorded a WAITING request.

    The worker's consumer runs it at the end of a batch that left nothing fetched,
    in the batch's transaction: a SCHEDULED request is decided in the commit that
    recorded it rather than in one of its own or at the next periodic run, and
    every EMERGENCY request that came before it still goes first. If more may
    wait, the next batch (or the periodic run) goes on; if the batch rolls back,
    the periodic run decides what had been recorded before it.
    """
    if not _recorded_waiting.is_set():
        return 0
    _recorded_waiting.clear()
    decided = decide_waiting_requests(limit=WAITING_PER_TRANSACTION)
    if decided == WAITING_PER_TRANSACTION:
        _recorded_waiting.set()
    return decided


# -- the decision -----------------------------------------------------------------
def _validation_error(bank_request: BankRequest, now: datetime) -> tuple[RejectReason, str] | None:
    problem = compatibility.invalid_reason(
        RequestShape(
            protocol=bank_request.protocol,
            blood_group=bank_request.blood_group,
            component=bank_request.component or None,
            units=bank_request.units_requested,
            priority=bank_request.priority,
            allow_partial=bank_request.allow_partial,
            authorised_by=bank_request.authorised_by,
            group_confirmed=bank_request.group_confirmed,
            special_requirements=tuple(bank_request.special_requirements),
            antigen_negative=tuple(bank_request.antigen_negative),
        )
    )
    if problem is not None:
        return RejectReason.INVALID_REQUEST, problem
    if bank_request.priority == Priority.SCHEDULED:
        if bank_request.needed_by is None:
            return RejectReason.INVALID_REQUEST, "a SCHEDULED request needs needed_by"
        if bank_request.requested_at and bank_request.needed_by <= bank_request.requested_at:
            return RejectReason.INVALID_REQUEST, "needed_by must be after the request was made"
        if bank_request.needed_by <= now:
            return RejectReason.NEEDED_BY_PASSED, f"needed_by {bank_request.needed_by.isoformat()} has passed"
    return None


def wanted_for(
    bank_request: BankRequest, component: Component, units: int, *, allow_partial: bool | None = None
) -> Wanted:
    """What ``bank_request`` asks of ``component`` (an MTP pack: one entry per component)."""
    return Wanted(
        component=component,
        blood_group=None if bank_request.blood_group == UNKNOWN_GROUP else BloodGroup(bank_request.blood_group),
        units=units,
        priority=Priority(bank_request.priority),
        allow_partial=bool(bank_request.allow_partial) if allow_partial is None else allow_partial,
        needed_by=bank_request.needed_by,
        group_confirmed=bank_request.group_confirmed,
        rhd_negative_required=bank_request.rhd_negative_required,
        special_requirements=frozenset(bank_request.special_requirements),
        antigen_negative=frozenset(bank_request.antigen_negative),
        a_plasma_requires_ht_negative=settings.A_PLASMA_REQUIRES_HT_NEGATIVE,
    )


def pack_recipe() -> PackRecipe:
    """The MTP pack composition from settings (transfusion.md section 7: UK 4:4:1, platelets from pack 2)."""
    return PackRecipe(
        red_cells=settings.MTP_PACK_RED_CELLS,
        plasma=settings.MTP_PACK_PLASMA,
        platelets=settings.MTP_PACK_PLATELETS,
        platelets_from_pack=settings.MTP_PLATELETS_FROM_PACK,
    )


def decide(bank_request: BankRequest, *, now: datetime, created: bool) -> BankRequest:
    """Decide ``bank_request`` by the policy of domain.md and transfusion.md and publish the decision, atomically.

    Chosen units are locked with ``FOR UPDATE SKIP LOCKED`` (a unit another
    decision holds is simply not a candidate), moved to ALLOCATED, linked by
    an ``Allocation``, and the decision and stock events go to the outbox in
    the same transaction. ``created`` says whether the row already exists.
    An MTP request: pack 1 is decided now.
    """
    with transaction.atomic(savepoint=False):
        problem = _validation_error(bank_request, now)
        if problem is not None:
            return _reject(bank_request, *problem, now=now, created=created)
        if bank_request.is_mtp:
            _decide_pack(bank_request, 1, now=now, created=created)
            return bank_request
        wanted = wanted_for(bank_request, Component(bank_request.component), bank_request.units_requested)
        units, allocated = _lock_units(wanted, now=now)
        compatible = _compatible_count(wanted, now) if len(units) < wanted.units else len(units)
        verdict = compatibility.outcome(wanted, len(units), compatible)
        if verdict not in ("APPROVED", "PARTIAL"):
            detail = (
                f"{len(units)} of {wanted.units} {wanted.component} units available for {bank_request.blood_group}"
                f"{_requirements_text(wanted)} ({compatible} compatible)"
            )
            return _reject(bank_request, RejectReason(verdict), detail, now=now, created=created)
        return _approve(
            bank_request, units, partial=verdict == "PARTIAL", now=now, created=created, allocated=allocated
        )


def _requirements_text(wanted: Wanted) -> str:
    needs = sorted(wanted.attributes) + [f"{antigen}-negative" for antigen in sorted(wanted.antigens)]
    return f" meeting {', '.join(needs)}" if needs else ""


def _candidates(wanted: Wanted, now: datetime):
    query = Unit.objects.filter(
        component=wanted.component, status=UnitStatus.AVAILABLE, expires_at__gt=now, recalled_at__isnull=True
    )
    if wanted.priority == Priority.SCHEDULED and wanted.needed_by is not None:
        query = query.filter(expires_at__gte=wanted.needed_by)
    return query


def _qualifying(query, step: DonorStep):
    query = query.filter(blood_group=step.group)
    if step.attributes:
        query = query.filter(special_attributes__contains=sorted(step.attributes))
    if step.antigens:
        query = query.filter(antigen_negative__contains=sorted(step.antigens))
    return query


def _compatible_count(wanted: Wanted, now: datetime) -> int:
    """Usable units of the groups ``wanted`` may draw from, whatever their attributes."""
    groups = compatibility.donor_groups(wanted)
    return _candidates(wanted, now).filter(blood_group__in=groups).count() if groups else 0


def _lock_units(wanted: Wanted, *, now: datetime) -> tuple[list[Unit], bool]:
    """Lock the units the policy takes, in policy order (fewer when stock is short).

    Returns the units and whether they are already marked ALLOCATED (the
    PostgreSQL one-statement path for the common case: enough units of the
    group that comes first whatever the stock, usually the recipient's own).
    """
    first = compatibility.first_choice(wanted)
    if connection.vendor == "postgresql" and first is not None:
        units = pg.take_units(wanted, first, now=now)
        if len(units) == wanted.units:
            return units, True
    candidates = _candidates(wanted, now)

    def take(step: DonorStep, count: int) -> list[Unit]:
        return list(
            _qualifying(candidates, step)
            .select_for_update(skip_locked=True)
            .order_by("expires_at", "din")
            .only(*pg.UNIT_FIELDS)[:count]
        )

    chosen = take(first, wanted.units) if first is not None else []
    if len(chosen) >= wanted.units:
        return chosen, False  # the first group suffices, no counting needed
    groups = [group for group in compatibility.donor_groups(wanted) if first is None or group != first.group]
    counts = {
        BloodGroup(row["blood_group"]): row["n"]
        for row in candidates.filter(blood_group__in=groups).values("blood_group").annotate(n=Count("id"))
    }
    for step in compatibility.donor_plan(wanted, counts):
        if (first is not None and step.group == first.group) or not counts.get(step.group):
            continue
        chosen.extend(take(step, wanted.units - len(chosen)))
        if len(chosen) >= wanted.units:
            break
    return chosen, False


def _allocation_entry(unit: Unit) -> dict:
    return {
        "unit_id": unit.pk,
        "din": unit.din,
        "component": unit.component,
        "blood_group": unit.blood_group,
        "expires_at": unit.expires_at,
        "batch": unit.batch,
        "product_code": unit.product_code or None,
        "division": unit.division or "00",
        "special_attributes": list(unit.special_attributes or []),
    }


def _allocation_reason(bank_request: BankRequest, pack: int | None = None) -> str:
    reason = f"allocated to {bank_request.hospital_name or bank_request.hospital_id}"
    return reason if pack is None else f"{reason} (MTP pack {pack})"


def _allocation_rows(
    bank_request: BankRequest, units: list[Unit], *, now: datetime, pack: int | None = None
) -> tuple[list[Allocation], list[UnitStatusChange]]:
    reason = _allocation_reason(bank_request, pack)
    allocations = [Allocation(request=bank_request, unit=unit, allocated_at=now, pack=pack) for unit in units]
    history = [
        UnitStatusChange(
            unit=unit,
            from_status=UnitStatus.AVAILABLE,
            to_status=UnitStatus.ALLOCATED,
            at=now,
            by=SYSTEM_ALLOCATION,
            reason=reason,
            request_id=bank_request.request_id,
        )
        for unit in units
    ]
    return allocations, history


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
            allocations=[_allocation_entry(unit) for unit in units],
            decided_at=now,
            uncrossmatched=bank_request.uncrossmatched,
        ),
        subject=str(request_id),
        correlation_id=bank_request.correlation_id or str(request_id),
    )
    _save_decision(bank_request, event, now=now, created=created, units=units)
    taken = Counter((unit.component, unit.blood_group) for unit in units)
    refresh_stock_at_batch_end({key: -count for key, count in taken.items()}, now=now)
    log.info("request %s %s: %d units", request_id, bank_request.status, len(units))
    return bank_request


def _reject(
    bank_request: BankRequest, reason: RejectReason, detail: str, *, now: datetime, created: bool
) -> BankRequest:
    bank_request.status = RequestStatus.REJECTED
    bank_request.reason_code = reason.value
    bank_request.detail = detail[:500]
    event = _publish_rejection(bank_request, reason, bank_request.detail, now=now)
    _save_decision(bank_request, event, now=now, created=created)
    log.info("request %s rejected: %s", bank_request.request_id, reason)
    return bank_request


def _publish_rejection(
    bank_request: BankRequest, reason: RejectReason, detail: str, *, now: datetime, pack: int | None = None
):
    return publish(
        topics.REJECTED,
        BloodRejectedV2(
            request_id=bank_request.request_id,
            hospital_id=bank_request.hospital_id,
            reason_code=reason,
            detail=detail[:500],
            decided_at=now,
            pack=pack,
        ),
        subject=str(bank_request.request_id),
        correlation_id=bank_request.correlation_id or str(bank_request.request_id),
    )


def _save_decision(
    bank_request: BankRequest, event, *, now: datetime, created: bool, units: Sequence[Unit] = ()
) -> None:
    """Write the decision: the request row and, for each unit allocated, its allocation and history rows."""
    bank_request.decided_at = now
    bank_request.decision_event_id = event.id
    bank_request.decision_event_type = event.type
    bank_request.decision_event = event.to_bytes()
    metrics.decision_made(bank_request)
    if connection.vendor == "postgresql":
        # One round trip, its statement built once: no model instances for the allocation and history rows.
        unit_ids = [unit.pk for unit in units]
        reason = _allocation_reason(bank_request)
        pg.save_decision(bank_request, unit_ids, created=created, at=now, by=SYSTEM_ALLOCATION, reason=reason)
        return
    allocations, history = _allocation_rows(bank_request, units, now=now)
    if created:
        bank_request.save()
    else:
        bank_request.save(force_insert=True)
    Allocation.objects.bulk_create(allocations)
    UnitStatusChange.objects.bulk_create(history)


# -- massive transfusion packs (transfusion.md section 7) -------------------------------------------
def _decide_pack(
    bank_request: BankRequest,
    number: int,
    *,
    now: datetime,
    created: bool,
    requested_by: str = "",
    requested_at: datetime | None = None,
) -> MtpPack:
    """Allocate pack ``number`` of an MTP request (partial allowed) and publish its own decision.

    Pack 1 is decided with the request (``created``: the request row exists already); it also becomes
    the request's decision (what a repeated request re-sends) and makes the request MTP_ACTIVE.
    """
    chosen: list[Unit] = []
    requested = 0
    short_by_requirements = False
    contents = pack_recipe().contents(number)
    for component, count in contents:
        wanted = wanted_for(bank_request, component, count, allow_partial=True)
        units, allocated = _lock_units(wanted, now=now)
        if len(units) < count and _compatible_count(wanted, now) > len(units):
            short_by_requirements = True
        if not allocated:
            Unit.objects.filter(pk__in=[unit.pk for unit in units]).update(status=UnitStatus.ALLOCATED, updated_at=now)
        requested += count
        chosen.extend(units)
    correlation_id = bank_request.correlation_id or str(bank_request.request_id)
    what = ", ".join(f"{count} {component}" for component, count in contents)
    pack = MtpPack(
        request=bank_request,
        number=number,
        units_requested=requested,
        units_allocated=len(chosen),
        requested_by=requested_by,
        requested_at=requested_at,
        decided_at=now,
    )
    if chosen:
        partial = len(chosen) < requested
        pack.status = MtpPack.Status.PARTIALLY_APPROVED if partial else MtpPack.Status.APPROVED
        pack.detail = f"pack {number}: {len(chosen)} of {requested} units allocated ({what})"
        event = publish(
            topics.APPROVED,
            BloodApprovedV1(
                request_id=bank_request.request_id,
                hospital_id=bank_request.hospital_id,
                units_requested=requested,
                units_allocated=len(chosen),
                partial=partial,
                allocations=[_allocation_entry(unit) for unit in chosen],
                decided_at=now,
                pack=number,
                uncrossmatched=bank_request.uncrossmatched,
            ),
            subject=str(bank_request.request_id),
            correlation_id=correlation_id,
        )
    else:
        reason = (
            RejectReason.NO_UNITS_MEETING_REQUIREMENTS if short_by_requirements else RejectReason.NO_COMPATIBLE_UNITS
        )
        pack.status, pack.reason_code = MtpPack.Status.REJECTED, reason.value
        pack.detail = f"pack {number}: no unit available for {bank_request.blood_group} ({what})"
        event = _publish_rejection(bank_request, reason, pack.detail, now=now, pack=number)
    pack.decision_event_id, pack.decision_event_type, pack.decision_event = event.id, event.type, event.to_bytes()
    allocations, history = _allocation_rows(bank_request, chosen, now=now, pack=number)
    if number == 1:
        bank_request.status = RequestStatus.MTP_ACTIVE
        bank_request.reason_code = pack.reason_code
        bank_request.detail = pack.detail
        bank_request.decided_at = now
        bank_request.decision_event_id = event.id
        bank_request.decision_event_type = event.type
        bank_request.decision_event = pack.decision_event
    bank_request.units_allocated = (bank_request.units_allocated or 0) + len(chosen)
    if created or number > 1:
        bank_request.save()
    else:
        bank_request.save(force_insert=True)
    pack.save(force_insert=True)
    Allocation.objects.bulk_create(allocations)
    UnitStatusChange.objects.bulk_create(history)
    metrics.decision_made(bank_request, outcome=pack.status, reason=pack.reason_code, started=requested_at)
    taken = Counter((unit.component, unit.blood_group) for unit in chosen)
    refresh_stock_at_batch_end({key: -count for key, count in taken.items()}, now=now)
    log.info("request %s MTP pack %d %s: %d units", bank_request.request_id, number, pack.status, len(chosen))
    return pack


def _refuse_unless_mtp_of(bank_request: BankRequest | None, request_id: UUID, hospital_id: UUID) -> BankRequest:
    if bank_request is None or bank_request.hospital_id != hospital_id:
        raise RefusedEvent(f"no request {request_id} of hospital {hospital_id} at the bank")
    if not bank_request.is_mtp:
        raise RefusedEvent(f"request {request_id} is not an MTP request")
    return bank_request


def request_mtp_pack(*, data: MtpPackRequestedV1, now: datetime | None = None) -> MtpPack:
    """``hospital.mtp.pack_requested``: decide pack ``data.pack`` of an MTP request, or re-send its decision.

    A pack asked for after the MTP was stopped or cancelled (or of a request rejected as invalid) is
    rejected without allocating anything. Raises ``RefusedEvent`` when there is no such MTP request.
    """
    now = now or timezone.now()
    with transaction.atomic(savepoint=False):
        bank_request = _refuse_unless_mtp_of(
            BankRequest.objects.select_for_update().filter(pk=data.request_id).first(),
            data.request_id,
            data.hospital_id,
        )
        existing = MtpPack.objects.filter(request=bank_request, number=data.pack).first()
        if existing is not None:
            resend_decision(existing)
            return existing
        if bank_request.status != RequestStatus.MTP_ACTIVE or bank_request.cancelled_at is not None:
            return _reject_pack(bank_request, data, now=now)
        return _decide_pack(
            bank_request,
            data.pack,
            now=now,
            created=True,
            requested_by=data.requested_by,
            requested_at=data.requested_at,
        )


def _reject_pack(bank_request: BankRequest, data: MtpPackRequestedV1, *, now: datetime) -> MtpPack:
    if bank_request.status == RequestStatus.REJECTED and bank_request.cancelled_at is None:
        reason, detail = RejectReason.INVALID_REQUEST, f"pack {data.pack}: the MTP request was rejected"
    else:
        what = "stopped" if bank_request.mtp_stopped_at else "cancelled"
        reason = RejectReason.CANCELLED_BEFORE_DECISION
        detail = f"pack {data.pack}: the MTP was {what} before this pack was decided"
    event = _publish_rejection(bank_request, reason, detail, now=now, pack=data.pack)
    pack = MtpPack.objects.create(
        request=bank_request,
        number=data.pack,
        status=MtpPack.Status.REJECTED,
        reason_code=reason.value,
        detail=detail,
        units_requested=sum(count for _, count in pack_recipe().contents(data.pack)),
        requested_by=data.requested_by,
        requested_at=data.requested_at,
        decided_at=now,
        decision_event_id=event.id,
        decision_event_type=event.type,
        decision_event=event.to_bytes(),
    )
    log.info("request %s MTP pack %d rejected: %s", bank_request.request_id, data.pack, reason)
    return pack


def stop_mtp(*, data: MtpStoppedV1, now: datetime | None = None) -> list[UUID]:
    """``hospital.mtp.stopped``: release the units not yet dispatched (MTP_STOPPED); no further pack is allocated.

    A repeated stop changes nothing. Returns the released unit ids.
    """
    now = now or timezone.now()
    with transaction.atomic(savepoint=False):
        bank_request = _refuse_unless_mtp_of(
            BankRequest.objects.select_for_update().filter(pk=data.request_id).first(),
            data.request_id,
            data.hospital_id,
        )
        if bank_request.mtp_stopped_at is not None:
            return []
        bank_request.mtp_stopped_at, bank_request.mtp_stopped_by = data.stopped_at, data.stopped_by
        if bank_request.status == RequestStatus.MTP_ACTIVE:
            bank_request.status = RequestStatus.MTP_STOPPED
        bank_request.save(update_fields=["mtp_stopped_at", "mtp_stopped_by", "status"])
        return release_allocations(bank_request=bank_request, reason="MTP_STOPPED", by=data.stopped_by, now=now)


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
        refresh_stock_at_batch_end(returned, now=now)
    log.info("released %d units of request %s (%s)", len(unit_ids), bank_request.request_id, reason)
    return unit_ids
