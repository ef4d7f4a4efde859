"""Writes of vein-to-vein traceability at the bank: dispatch, receipts and fates from hospitals, overdue
fates, recalls. Each function is one transaction (joining the handler's) with its events in the outbox.

Lock order, everywhere: request, then allocations, then units (each by primary key), so dispatch,
cancel, fate and recall never deadlock one another.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from uuid import UUID

from allocation.models import Allocation, BankRequest
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from inventory.lifecycle import Step
from inventory.models import Unit, UnitStatus, UnitStatusChange
from inventory.services import refresh_stock

from shared_events import topics
from shared_events.django.outbox import publish
from shared_events.enums import Fate, RecallReason, RecallSeverity
from shared_events.schemas import (
    AllocationReleasedV1,
    FateOverdueV1,
    RecallAcknowledgedV1,
    RecallIssuedV1,
    UnitFateV1,
    UnitsDispatchedV1,
    UnitsReceivedV1,
)
from traceability import rules
from traceability.models import Dispatch, OverdueAnnouncement, Recall, RecallStatus, RecallUnit, UnitFate

log = logging.getLogger(__name__)

SYSTEM = "system:traceability"


class NothingToDispatch(Exception):
    """The request has no allocated unit left to dispatch (HTTP 409)."""


class PackNotApplicable(ValueError):
    """A ``pack`` given for a STANDARD request (HTTP 400 on the field)."""


class RefusedEvent(Exception):
    """An event from a hospital that does not fit the bank's records: the consumer dead-letters it."""


class UnknownDins(Exception):
    def __init__(self, dins: list[str]) -> None:
        self.dins = dins
        super().__init__(f"unknown DINs: {', '.join(dins)}")


class RecallNotAccounted(Exception):
    """A recall cannot close while a unit is unaccounted for (HTTP 409)."""


def unit_entry(unit: Unit) -> dict:
    """A unit as the bank's events carry it: ISBT 128 product identity and special attributes included."""
    return {
        "unit_id": unit.pk,
        "din": unit.din,
        "product_code": unit.product_code or None,
        "division": unit.division or "00",
        "component": unit.component,
        "blood_group": unit.blood_group,
        "expires_at": unit.expires_at,
        "special_attributes": list(unit.special_attributes or []),
    }


def _row(unit: Unit, *, to: str, step: Step, at: datetime, by: str, request_id: UUID | None = None, **detail):
    return UnitStatusChange(
        unit=unit,
        from_status=unit.status,
        to_status=to,
        at=at,
        by=by,
        step=step.value,
        request_id=request_id,
        detail={key: value for key, value in detail.items() if value not in (None, "")},
        reason=detail.get("reason", "") or "",
    )


# -- dispatch --------------------------------------------------------------------------------------
def dispatch_request(
    *,
    request_id: UUID | str,
    by: str,
    courier: str = "",
    note: str = "",
    pack: int | None = None,
    now: datetime | None = None,
) -> Dispatch:
    """Issue the units allocated to the request: ALLOCATED → ISSUED, ``bloodbank.units.dispatched``.

    An MTP request is dispatched pack by pack: ``pack``, or by default the oldest pack with units
    still allocated; the event carries the pack (null for a STANDARD request, where ``pack`` must
    not be given: ``PackNotApplicable``).
    An allocated unit that expired meanwhile is not sent: its allocation is released
    (``bloodbank.allocation.released``, reason ``EXPIRED``) and it becomes EXPIRED.
    Raises ``BankRequest.DoesNotExist`` or ``NothingToDispatch`` (none left allocated).
    """
    now = now or timezone.now()
    with transaction.atomic():
        bank_request = BankRequest.objects.select_for_update().get(pk=request_id)
        if pack is not None and not bank_request.is_mtp:
            raise PackNotApplicable("only an MTP request is dispatched by pack")
        live = list(
            Allocation.objects.select_for_update()
            .filter(request=bank_request, released_at__isnull=True)
            .order_by("unit_id")
        )
        units = list(Unit.objects.select_for_update().filter(pk__in=[a.unit_id for a in live]).order_by("pk"))
        if bank_request.is_mtp:
            pack = pack if pack is not None else _oldest_pack_to_dispatch(live, units)
            if pack is None:
                raise NothingToDispatch(f"MTP request {bank_request.request_id} has no pack left to dispatch")
            in_pack = {a.unit_id for a in live if a.pack == pack}
            units = [unit for unit in units if unit.pk in in_pack]
            live = [a for a in live if a.pack == pack]
        allocated = [unit for unit in units if unit.status == UnitStatus.ALLOCATED]
        expired = [unit for unit in allocated if unit.expires_at <= now]
        sending = [unit for unit in allocated if unit.expires_at > now]
        if expired:
            _release_expired(bank_request, live, expired, now=now)
        dispatch = None
        if not sending:
            if not expired:
                of_pack = f" in pack {pack}" if pack is not None else ""
                raise NothingToDispatch(
                    f"request {bank_request.request_id} has no allocated units to dispatch{of_pack}"
                )
        else:  # the release of expired units above is committed even when nothing is left to send
            dispatch = _issue(bank_request, sending, by=by, courier=courier, note=note, now=now, pack=pack)
    if dispatch is None:
        raise NothingToDispatch(f"every unit allocated to request {bank_request.request_id} expired; released")
    log.info("dispatched %d units of request %s (pack %s)", len(sending), bank_request.request_id, pack)
    return dispatch


def _oldest_pack_to_dispatch(live: list[Allocation], units: list[Unit]) -> int | None:
    allocated = {unit.pk for unit in units if unit.status == UnitStatus.ALLOCATED}
    packs = sorted({a.pack for a in live if a.unit_id in allocated and a.pack is not None})
    return packs[0] if packs else None


def _issue(
    bank_request: BankRequest,
    units: list[Unit],
    *,
    by: str,
    courier: str,
    note: str,
    now: datetime,
    pack: int | None = None,
):
    event = publish(
        topics.UNITS_DISPATCHED,
        UnitsDispatchedV1(
            request_id=bank_request.request_id,
            hospital_id=bank_request.hospital_id,
            pack=pack,
            units=[unit_entry(unit) for unit in units],
            dispatched_by=by,
            dispatched_at=now,
        ),
        subject=str(bank_request.request_id),
        correlation_id=bank_request.correlation_id or str(bank_request.request_id),
    )
    dispatch = Dispatch.objects.create(
        request=bank_request,
        pack=pack,
        dispatched_at=now,
        dispatched_by=by,
        courier=courier[:100],
        note=note[:500],
        event_id=event.id,
    )
    dispatch.units.set(units)
    history = [
        _row(unit, to=UnitStatus.ISSUED, step=Step.DISPATCHED, at=now, by=by, request_id=bank_request.request_id)
        for unit in units
    ]
    UnitStatusChange.objects.bulk_create(history)
    Unit.objects.filter(pk__in=[unit.pk for unit in units]).update(status=UnitStatus.ISSUED, updated_at=now)
    return dispatch


def _release_expired(bank_request: BankRequest, live: list[Allocation], expired: list[Unit], *, now: datetime):
    ids = {unit.pk for unit in expired}
    Allocation.objects.filter(pk__in=[a.pk for a in live if a.unit_id in ids]).update(
        released_at=now, release_reason="EXPIRED"
    )
    UnitStatusChange.objects.bulk_create(
        _row(
            unit,
            to=UnitStatus.EXPIRED,
            step=Step.RELEASED,
            at=now,
            by=SYSTEM,
            request_id=bank_request.request_id,
            reason="expired before dispatch",
        )
        for unit in expired
    )
    Unit.objects.filter(pk__in=ids).update(status=UnitStatus.EXPIRED, updated_at=now)
    publish(
        topics.RELEASED,
        AllocationReleasedV1(
            request_id=bank_request.request_id,
            hospital_id=bank_request.hospital_id,
            unit_ids=sorted(ids),
            reason="EXPIRED",
            released_at=now,
        ),
        subject=str(bank_request.request_id),
        correlation_id=bank_request.correlation_id or str(bank_request.request_id),
    )


# -- from hospitals ----------------------------------------------------------------------------------
def record_receipt(*, data: UnitsReceivedV1) -> Dispatch:
    """``hospital.units.received``: the dispatch arrived (a repeat changes nothing)."""
    with transaction.atomic():
        dispatch = (
            Dispatch.objects.select_for_update()
            .filter(request_id=data.request_id, request__hospital_id=data.hospital_id, pack=data.pack)
            .first()
        )
        if dispatch is None:
            raise RefusedEvent(f"no dispatch of request {data.request_id} to hospital {data.hospital_id}")
        if dispatch.received_at is not None:
            return dispatch
        dispatch.received_at, dispatch.received_by = data.received_at, data.received_by
        dispatch.save(update_fields=["received_at", "received_by"])
        UnitStatusChange.objects.bulk_create(
            _row(
                unit,
                to=unit.status,
                step=Step.RECEIVED_BY_HOSPITAL,
                at=data.received_at,
                by=data.received_by,
                request_id=data.request_id,
            )
            for unit in dispatch.units.order_by("pk")
        )
    return dispatch


def record_fate(*, data: UnitFateV1, event_id: UUID) -> UnitFate:
    """``hospital.unit.fate``: store the fate of a unit issued to that hospital, once per unit and issue.

    The same fate again changes nothing; a unit not issued to that hospital for that
    request, or a second, different fate, raises ``RefusedEvent`` (dead-lettered).
    A return is decided here (``rules.return_decision``): QUARANTINED for inspection, or WASTED.
    """
    unit_id = data.unit.unit_id
    with transaction.atomic():
        existing = UnitFate.objects.filter(unit_id=unit_id, request_id=data.request_id).first()
        if existing is not None:
            if existing.fate != data.fate or existing.hospital_id != data.hospital_id:
                raise RefusedEvent(f"unit {data.unit.din} already has fate {existing.fate} for this request")
            return existing
        allocation = (
            Allocation.objects.select_for_update()
            .select_related("request")
            .filter(unit_id=unit_id, request_id=data.request_id, released_at__isnull=True)
            .first()
        )
        if allocation is None or allocation.request.hospital_id != data.hospital_id:
            raise RefusedEvent(f"unit {data.unit.din} is not issued to hospital {data.hospital_id} for this request")
        unit = Unit.objects.select_for_update().get(pk=unit_id)
        if (
            unit.status != UnitStatus.ISSUED
            or not Dispatch.objects.filter(units=unit, request_id=data.request_id).exists()
        ):
            raise RefusedEvent(f"unit {unit.din} is {unit.status} at the bank, not ISSUED")
        fate = UnitFate(
            unit=unit,
            request_id=data.request_id,
            hospital_id=data.hospital_id,
            fate=data.fate.value,
            recorded_by=data.recorded_by,
            recorded_at=data.recorded_at,
            patient_reference=data.patient_reference or "",
            started_at=data.started_at,
            ended_at=data.ended_at,
            adverse_reaction=data.adverse_reaction,
            waste_reason=data.reason.value if data.reason else "",
            left_storage_at=data.left_storage_at,
            returned_at=data.returned_at,
            cold_chain_intact=data.cold_chain_intact,
            event_id=event_id,
        )
        rows = _apply_fate(unit, fate, allocation)
        fate.save()
        UnitStatusChange.objects.bulk_create(rows)
        unit.save(update_fields=["status", "updated_at"])
    log.info("fate of unit %s: %s", data.unit.din, data.fate)
    return fate


def _apply_fate(unit: Unit, fate: UnitFate, allocation: Allocation) -> list[UnitStatusChange]:
    common = {"by": fate.recorded_by, "request_id": fate.request_id}
    if fate.fate == Fate.TRANSFUSED:
        row = _row(
            unit,
            to=UnitStatus.TRANSFUSED,
            step=Step.TRANSFUSED,
            at=fate.started_at,
            patient_reference=fate.patient_reference,
            started_at=fate.started_at.isoformat(),
            ended_at=fate.ended_at.isoformat() if fate.ended_at else None,
            adverse_reaction=fate.adverse_reaction,
            **common,
        )
        unit.status = UnitStatus.TRANSFUSED
        return [row]
    if fate.fate == Fate.WASTED:
        row = _row(
            unit, to=UnitStatus.WASTED, step=Step.WASTED, at=fate.recorded_at, reason=fate.waste_reason, **common
        )
        unit.status = UnitStatus.WASTED
        return [row]
    decision, waste_reason = rules.return_decision(
        component=unit.component,
        left_storage_at=fate.left_storage_at,
        returned_at=fate.returned_at,
        cold_chain_intact=bool(fate.cold_chain_intact),
        expires_at=unit.expires_at,
        recalled=unit.recalled_at is not None,
        limit_minutes=settings.RETURN_LIMIT_MINUTES,
    )
    fate.bank_decision = decision
    fate.bank_waste_reason = waste_reason.value if waste_reason else ""
    returned = _row(
        unit,
        to=decision,
        step=Step.RETURNED,
        at=fate.returned_at,
        left_storage_at=fate.left_storage_at.isoformat(),
        returned_at=fate.returned_at.isoformat(),
        cold_chain_intact=fate.cold_chain_intact,
        **common,
    )
    # Back at the bank: the issue is over, so the unit may be allocated again once restocked.
    allocation.released_at, allocation.release_reason = fate.returned_at, "RETURNED"
    allocation.save(update_fields=["released_at", "release_reason"])
    unit.status = decision
    decided = _row(
        unit,
        to=decision,
        step=Step.WASTED if decision == UnitStatus.WASTED else Step.QUARANTINED,
        at=fate.returned_at,
        by=SYSTEM,
        request_id=fate.request_id,
        reason=fate.bank_waste_reason or ("recalled" if unit.recalled_at else "returned: inspect before release"),
    )
    return [returned, decided]


# -- overdue fates ----------------------------------------------------------------------------------
def overdue_units(*, now: datetime | None = None, hours: int | None = None):
    """Units ISSUED longer than ``FATE_OVERDUE_HOURS`` ago (by their dispatch) with no fate yet."""
    now = now or timezone.now()
    hours = hours or settings.FATE_OVERDUE_HOURS
    return Unit.objects.filter(
        status=UnitStatus.ISSUED, dispatches__dispatched_at__lte=now - timedelta(hours=hours)
    ).distinct()


def announce_overdue_fates(*, now: datetime | None = None) -> int:
    """Publish ``bloodbank.fate.overdue`` to each hospital with overdue units, at most once a day each.

    Runs in the worker (hourly); returns the number of hospitals told.
    """
    now = now or timezone.now()
    hours = settings.FATE_OVERDUE_HOURS
    told = 0
    with transaction.atomic():
        issued = (
            Dispatch.units.through.objects.filter(
                unit__status=UnitStatus.ISSUED,
                dispatch__dispatched_at__lte=now - timedelta(hours=hours),
                unit__allocations__released_at__isnull=True,
                unit__allocations__request=F("dispatch__request"),
            )
            .select_related("unit", "dispatch__request")
            .order_by("unit__din")
        )
        by_hospital: dict[UUID, list[dict]] = defaultdict(list)
        for row in issued:
            by_hospital[row.dispatch.request.hospital_id].append(
                unit_entry(row.unit)
                | {"request_id": row.dispatch.request_id, "dispatched_at": row.dispatch.dispatched_at}
            )
        for hospital_id, units in sorted(by_hospital.items()):
            last = OverdueAnnouncement.objects.select_for_update().filter(hospital_id=hospital_id).first()
            if last is not None and last.announced_at > now - timedelta(hours=24):
                continue
            publish(
                topics.FATE_OVERDUE,
                FateOverdueV1(hospital_id=hospital_id, overdue_after_hours=hours, units=units, as_of=now),
                subject=str(hospital_id),
            )
            OverdueAnnouncement.objects.update_or_create(hospital_id=hospital_id, defaults={"announced_at": now})
            told += 1
    if told:
        log.warning("fate overdue announced to %d hospital(s)", told)
    return told


# -- recalls ---------------------------------------------------------------------------------------
def issue_recall(
    *,
    dins: list[str],
    reason: RecallReason | str,
    severity: RecallSeverity | str,
    by: str,
    note: str = "",
    now: datetime | None = None,
) -> Recall:
    """Recall every unit of ``dins`` (all components and divisions), in one transaction.

    In bank stock (AVAILABLE, QUARANTINED): QUARANTINED. ALLOCATED: released
    (``bloodbank.allocation.released``, reason ``RECALLED``) and QUARANTINED. Issued
    (ISSUED, TRANSFUSED, WASTED at a hospital): listed per hospital in
    ``bloodbank.recall.issued``; those hospitals answer. Raises ``UnknownDins``.
    """
    now = now or timezone.now()
    dins = sorted(set(dins))
    with transaction.atomic():
        known = set(Unit.objects.filter(din__in=dins).values_list("din", flat=True))
        if missing := [din for din in dins if din not in known]:
            raise UnknownDins(missing)
        # Locks in the order dispatch takes them (request, its allocations, units), so a recall and a
        # dispatch at once wait for each other instead of deadlocking (one of them would fail).
        live_allocations = Allocation.objects.filter(unit__din__in=dins, released_at__isnull=True)
        request_ids = sorted(set(live_allocations.values_list("request_id", flat=True)))
        list(BankRequest.objects.select_for_update().filter(pk__in=request_ids).order_by("pk").values_list("pk"))
        live = {
            a.unit_id: a
            for a in live_allocations.select_for_update(of=("self",)).select_related("request").order_by("unit_id")
        }
        units = list(Unit.objects.select_for_update().filter(din__in=dins).order_by("pk"))
        recall = Recall.objects.create(
            dins=dins, reason=str(reason), severity=str(severity), note=note[:500], issued_by=by, issued_at=now
        )
        issued_dispatch = set(Dispatch.objects.filter(units__in=units).values_list("request_id", "units"))
        history, recalled, deltas = [], [], Counter()
        released: dict[UUID, list[Unit]] = defaultdict(list)
        hospitals: dict[UUID, list[dict]] = defaultdict(list)
        for unit in units:
            allocation = live.get(unit.pk)
            issued = allocation is not None and (allocation.request_id, unit.pk) in issued_dispatch
            outcome = rules.bank_outcome(status=unit.status, issued=issued)
            entry = RecallUnit(recall=recall, unit=unit, bank_status=unit.status)
            target = unit.status
            if outcome is None:
                entry.hospital_id, entry.request_id = allocation.request.hospital_id, allocation.request_id
                hospitals[entry.hospital_id].append(
                    unit_entry(unit) | {"request_id": allocation.request_id, "bank_status": unit.status}
                )
            else:
                entry.outcome, entry.answered_at = outcome, now
                if unit.status in (UnitStatus.AVAILABLE, UnitStatus.ALLOCATED, UnitStatus.QUARANTINED):
                    target = UnitStatus.QUARANTINED
                if unit.status == UnitStatus.AVAILABLE:
                    deltas[unit.stock_key] -= 1
                if unit.status == UnitStatus.ALLOCATED and allocation is not None:
                    allocation.released_at, allocation.release_reason = now, "RECALLED"
                    allocation.save(update_fields=["released_at", "release_reason"])
                    released[allocation.request_id].append(unit)
            history.append(
                _row(
                    unit,
                    to=target,
                    step=Step.RECALLED,
                    at=now,
                    by=by,
                    request_id=entry.request_id,
                    recall_id=str(recall.id),
                    reason=str(reason),
                )
            )
            unit.status, unit.recalled_at = target, now
            recalled.append(entry)
        Unit.objects.bulk_update(units, ["status", "recalled_at", "updated_at"])
        RecallUnit.objects.bulk_create(recalled)
        UnitStatusChange.objects.bulk_create(history)
        for request_id, request_units in released.items():
            bank_request = live[request_units[0].pk].request
            publish(
                topics.RELEASED,
                AllocationReleasedV1(
                    request_id=request_id,
                    hospital_id=bank_request.hospital_id,
                    unit_ids=[unit.pk for unit in request_units],
                    reason="RECALLED",
                    released_at=now,
                ),
                subject=str(request_id),
                correlation_id=bank_request.correlation_id or str(request_id),
            )
        publish(
            topics.RECALL_ISSUED,
            RecallIssuedV1(
                recall_id=recall.id,
                reason=reason,
                severity=severity,
                dins=dins,
                hospitals=[{"hospital_id": h, "units": u} for h, u in sorted(hospitals.items())],
                issued_by=by,
                issued_at=now,
            ),
            subject=str(recall.id),
        )
        refresh_stock(keys={unit.stock_key for unit in units}, deltas=deltas, now=now)
    log.warning("recall %s of %d DINs (%d units) by %s", recall.id, len(dins), len(units), by)
    return recall


def record_recall_answer(*, data: RecallAcknowledgedV1) -> Recall | None:
    """``hospital.recall.acknowledged``: keep each unit's latest answer from the hospital it was issued to."""
    with transaction.atomic():
        recall = Recall.objects.select_for_update().filter(pk=data.recall_id).first()
        if recall is None:
            raise RefusedEvent(f"unknown recall {data.recall_id}")
        entries = {
            entry.unit_id: entry
            for entry in RecallUnit.objects.select_for_update().filter(recall=recall, hospital_id=data.hospital_id)
        }
        changed = []
        for answer in data.units:
            entry = entries.get(answer.unit_id)
            if entry is None:
                log.warning(
                    "recall %s: hospital %s answered for unit %s not listed for it",
                    recall.id,
                    data.hospital_id,
                    answer.din,
                )
                continue
            if entry.answered_at is not None and entry.answered_at > data.acknowledged_at:
                continue  # an older answer than the one kept
            entry.outcome, entry.answered_at = answer.state.value, data.acknowledged_at
            entry.patient_reference = answer.patient_reference or ""
            entry.started_at = answer.started_at
            changed.append(entry)
        RecallUnit.objects.bulk_update(changed, ["outcome", "answered_at", "patient_reference", "started_at"])
    return recall


def close_recall(*, recall_id: UUID | str, by: str, now: datetime | None = None) -> Recall:
    """OPEN → CLOSED once every unit is accounted for; raises ``RecallNotAccounted``."""
    now = now or timezone.now()
    with transaction.atomic():
        recall = Recall.objects.select_for_update().get(pk=recall_id)
        if recall.status == RecallStatus.CLOSED:
            return recall
        open_units = [u.unit.din for u in recall.units.select_related("unit") if u.outcome not in rules.ACCOUNTED]
        if open_units:
            raise RecallNotAccounted(f"not accounted for yet: {', '.join(sorted(open_units))}")
        recall.status, recall.closed_by, recall.closed_at = RecallStatus.CLOSED, by, now
        recall.save(update_fields=["status", "closed_by", "closed_at"])
    return recall
