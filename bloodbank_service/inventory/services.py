"""Writes to the inventory: receiving units, status changes, the expiry sweep, stock events.

Every function runs in its own ``transaction.atomic()`` (joining the caller's
when there is one) and writes its events to the outbox in that transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from inventory import rules, selectors
from inventory.lifecycle import Step
from inventory.models import ProductDescription, StockSnapshot, StockThreshold, Unit, UnitStatus, UnitStatusChange
from inventory.products import SEED_PRODUCTS
from inventory.receipt import RED_CELL_COMPONENTS, ReceiptError, check_receipt, irradiated_shelf_life
from shared_events import topics
from shared_events.django import batch
from shared_events.django.outbox import publish
from shared_events.django.prepared import execute
from shared_events.enums import BankDiscardReason, BloodGroup, Component, StockLevel, UnitAttribute
from shared_events.schemas import InventoryUpdatedV1, LowStockV1

log = logging.getLogger(__name__)

StockKey = tuple[str, str]
SYSTEM_EXPIRY = "system:expiry-sweep"


class TransitionError(Exception):
    """A status change the unit's current status does not allow (HTTP 409)."""


@dataclass(frozen=True)
class StockChange:
    key: StockKey
    available_units: int
    level: str
    crossing: str | None


def stock_key_of(component: str, blood_group: str) -> str:
    """The Kafka key and event subject of a stock key: ``component:blood_group``."""
    return f"{component}:{blood_group}"


# -- stock events -------------------------------------------------------------
ALL_KEYS: tuple[StockKey, ...] = tuple((c.value, g.value) for c in Component for g in BloodGroup)
_ALL_KEYS_SET = frozenset(ALL_KEYS)


def ensure_stock_keys() -> None:
    """Create default thresholds and empty snapshots for every key, in one order; keep existing ones.

    Always every key, in one statement and always in ``ALL_KEYS`` order: a transaction that created
    only the keys it needed, one call at a time, could wait for another's new key while holding
    one that other waited for (a deadlock between two decisions on a fresh database).
    """
    keys = list(ALL_KEYS)
    thresholds = []
    for component, group in keys:
        low, critical = rules.default_thresholds(Component(component), BloodGroup(group))
        thresholds.append(
            StockThreshold(component=component, blood_group=group, low_threshold=low, critical_threshold=critical)
        )
    StockThreshold.objects.bulk_create(thresholds, ignore_conflicts=True)
    by_key = {
        (t.component, t.blood_group): t.pk
        for t in StockThreshold.objects.filter(component__in={k[0] for k in keys}, blood_group__in={k[1] for k in keys})
    }
    StockSnapshot.objects.bulk_create(
        [StockSnapshot(threshold_id=by_key[key], component=key[0], blood_group=key[1]) for key in keys],
        ignore_conflicts=True,
    )


def _locked_snapshots(keys: list[StockKey]) -> dict[StockKey, StockSnapshot]:
    # Sorted keys, one statement: every writer locks in the same order, so no deadlock.
    locked = (
        StockSnapshot.objects.select_for_update(of=("self",))
        .select_related("threshold")
        .filter(_keys_q(keys))
        .order_by("component", "blood_group")
    )
    found = {(row.component, row.blood_group): row for row in locked}
    if not found.keys() >= set(keys):
        ensure_stock_keys()  # every key, in one order (see there)
        found = {(row.component, row.blood_group): row for row in locked.all()}  # the same query, run again
    return {key: found[key] for key in keys}


def refresh_stock(
    *,
    keys: Iterable[StockKey] = (),
    deltas: Mapping[StockKey, int] | None = None,
    now: datetime | None = None,
    recount: bool = False,
    coalesce: bool = False,
) -> list[StockChange]:
    """Publish the stock events due after a change; call it in the change's transaction, after the change.

    ``deltas`` gives, per key, how many units entered (+) or left (-) status
    AVAILABLE in this transaction; ``keys`` are further keys to look at
    (threshold changes). For each key: ``inventory.updated`` when its available
    count (not expired), days of supply or level changed since last published,
    and ``inventory.low_stock`` on a level crossing. The level is the worse of
    the level by units and the level by days of supply (transfusion.md section 9).

    The key's snapshot row is locked first, so writers of one key publish in
    commit order with exact counts. The AVAILABLE count is kept by deltas (no
    count over the whole stock on the decision path); only units expiring
    within 72 h are counted. ``recount`` counts everything instead (the
    expiry sweep does, every minute, so any drift heals). The demand side of
    days of supply (units dispatched in the last 28 days) is counted here on
    every path but the one-key decision path, which reads the last count: at
    most a sweep interval old, and never newer than what the level was last
    computed from, so levels do not flap.

    ``coalesce`` (the decisions'): when only the count changed and the key was
    published less than ``STOCK_EVENT_INTERVAL_SECONDS`` ago, the change is marked
    on the snapshot and ``publish_coalesced_stock`` sends it (a crossing still goes
    at once). Under load a key then costs one event every few seconds, not one per
    decision; the event carries the count, so nothing is lost by skipping the ones
    in between.
    """
    deltas = {key: delta for key, delta in (deltas or {}).items() if delta}
    wanted = sorted(set(keys) | set(deltas))
    if not wanted:
        return []
    now = now or timezone.now()
    if connection.vendor == "postgresql" and len(wanted) == 1 and wanted[0] in deltas and not recount:
        fast = _refresh_one_key_pg(wanted[0], deltas[wanted[0]], now, coalesce=coalesce)
        if fast is not None:
            return fast
    soon = now + rules.EXPIRING_SOON
    changes: list[StockChange] = []
    with transaction.atomic(savepoint=False):
        snapshots = _locked_snapshots(wanted)
        stored = {key: _counts_written(snap) for key, snap in snapshots.items()}
        uncounted = [key for key in wanted if recount or snapshots[key].status_available is None]
        if uncounted:
            # Counted after this transaction's own unit changes, so no delta applies.
            totals = {
                (row["component"], row["blood_group"]): row["n"]
                for row in Unit.objects.filter(_keys_q(uncounted), status=UnitStatus.AVAILABLE)
                .values("component", "blood_group")
                .annotate(n=Count("id"))
            }
            for key in uncounted:
                snapshots[key].status_available = totals.get(key, 0)
        for key, delta in deltas.items():
            if key not in uncounted:
                snapshots[key].status_available += delta
        dispatched = selectors.dispatched_counts(wanted, now=now)
        near = {
            (row["component"], row["blood_group"]): row
            for row in Unit.objects.filter(_keys_q(wanted), status=UnitStatus.AVAILABLE, expires_at__lte=soon)
            .values("component", "blood_group")
            .annotate(
                expired=Count("id", filter=Q(expires_at__lte=now)), expiring=Count("id", filter=Q(expires_at__gt=now))
            )
        }
        for key in wanted:
            snap = snapshots[key]
            row = near.get(key, {"expired": 0, "expiring": 0})
            available = snap.status_available - row["expired"]
            snap.dispatched_recently = dispatched.get(key, 0)
            days = rules.days_of_supply(available, snap.dispatched_recently)
            level = _level(snap.threshold, available, days)
            before = StockLevel(snap.level) if snap.level else None
            fields = ["status_available", "dispatched_recently", "unpublished_since"]
            snap.unpublished_since = None  # published now, or nothing changed since it last was
            if before != level or snap.available_units != available or snap.days_of_supply != days:
                _publish_stock(key, snap.threshold, available, row["expiring"], days, level, before, now, changes)
                snap.available_units, snap.expiring_within_72h, snap.days_of_supply = available, row["expiring"], days
                snap.level, snap.as_of = level.value, now
                fields += ["available_units", "expiring_within_72h", "days_of_supply", "level", "as_of"]
            elif _counts_written(snap) == stored[key]:
                continue  # nothing to write (the sweep's usual case for most keys): the row stays as it is, locked
            snap.save(update_fields=fields)
    return changes


@dataclass
class _PendingStock:
    deltas: Counter[StockKey]
    now: datetime | None = None


def refresh_stock_at_batch_end(deltas: Mapping[StockKey, int], *, now: datetime) -> None:
    """``refresh_stock(deltas=...)`` for a decision: once per key at the end of the consumer's batch, else now.

    In a batch (``shared_events.django.batch``: the worker's transaction of several
    events) the deltas of every decision are summed per key, and each key is
    refreshed once, in key order, before the commit: one ``inventory.updated`` with
    the level after all of them instead of one per decision. The levels in between
    were never committed, so no reader could have seen them; the snapshot rows are
    locked at the end, after the units (the order the API's writers take them in).
    """
    pending = batch.shared("inventory.stock-deltas", lambda: _PendingStock(Counter()), _refresh_pending)
    if pending is None:
        refresh_stock(deltas=deltas, now=now, coalesce=True)
        return
    pending.deltas.update(deltas)
    pending.now = max(pending.now or now, now)


def _refresh_pending(pending: _PendingStock) -> None:
    for key in sorted(pending.deltas):
        refresh_stock(deltas={key: pending.deltas[key]}, now=pending.now, coalesce=True)


class Limits(NamedTuple):
    """A key's thresholds as the one-key path reads them: the columns of ``StockThreshold`` a level needs."""

    low_threshold: int
    critical_threshold: int
    low_days: Decimal | None
    critical_days: Decimal | None


def _level(threshold: StockThreshold | Limits, available: int, days: Decimal | None) -> StockLevel:
    return rules.stock_level(
        available,
        low=threshold.low_threshold,
        critical=threshold.critical_threshold,
        days=days,
        low_days=threshold.low_days,
        critical_days=threshold.critical_days,
    )


# The decision hot path changes one key: one statement locks the snapshot row and applies the
# delta (instead of four ORM queries)...
_APPLY_DELTA_SQL = """
UPDATE inventory_stocksnapshot AS s
   SET status_available = s.status_available + %(delta)s
  FROM inventory_stockthreshold AS t
 WHERE t.id = s.threshold_id AND s.component = %(component)s AND s.blood_group = %(group)s
   AND s.status_available IS NOT NULL AND s.dispatched_recently IS NOT NULL
RETURNING s.status_available, s.available_units, s.level, s.days_of_supply, s.as_of, s.unpublished_since,
          s.dispatched_recently, t.low_threshold, t.critical_threshold, t.low_days, t.critical_days
"""
# ... then, with the row locked (so this statement sees every committed change of the key),
# the units near expiry are counted ...
_NEAR_EXPIRY_SQL = """
SELECT count(*) FILTER (WHERE expires_at <= %(now)s), count(*) FILTER (WHERE expires_at > %(now)s)
  FROM inventory_unit
 WHERE component = %(component)s AND blood_group = %(group)s AND status = 'AVAILABLE' AND expires_at <= %(soon)s
"""
# ... and what is published is recorded, or the change is marked for the stock flush.
_RECORD_PUBLISHED_SQL = """
UPDATE inventory_stocksnapshot
   SET available_units = %(available)s, expiring_within_72h = %(expiring)s, days_of_supply = %(days)s,
       level = %(level)s, as_of = %(now)s, unpublished_since = NULL
 WHERE component = %(component)s AND blood_group = %(group)s
"""
_MARK_UNPUBLISHED_SQL = """
UPDATE inventory_stocksnapshot SET unpublished_since = %(mark)s
 WHERE component = %(component)s AND blood_group = %(group)s
"""


def _refresh_one_key_pg(key: StockKey, delta: int, now: datetime, *, coalesce: bool) -> list[StockChange] | None:
    """``refresh_stock`` for one key on PostgreSQL in two or three statements; None: take the general path."""
    params = {"delta": delta, "component": key[0], "group": key[1], "now": now, "soon": now + rules.EXPIRING_SOON}
    with connection.cursor() as cursor:
        execute(cursor, _APPLY_DELTA_SQL, params)
        row = cursor.fetchone()
        if row is None:
            return None  # no snapshot yet, or never counted
        status_available, published, level_before, days_before, as_of, unpublished, dispatched, *limits = row
        execute(cursor, _NEAR_EXPIRY_SQL, params)
        expired, expiring = cursor.fetchone()
        threshold = Limits(*limits)  # no model instance: nothing is saved
        available = status_available - expired
        days = rules.days_of_supply(available, dispatched)
        level = _level(threshold, available, days)
        before = StockLevel(level_before) if level_before else None
        if before == level and published == available and days_before == days:
            if unpublished is not None:  # what waited for the flush is back to what was published
                execute(cursor, _MARK_UNPUBLISHED_SQL, params | {"mark": None})
            return []
        if coalesce and before == level and not _publish_due(as_of, now):
            # The count alone changed, and the key was published moments ago: the flush sends it.
            if unpublished is None:
                execute(cursor, _MARK_UNPUBLISHED_SQL, params | {"mark": now})
            return []
        execute(
            cursor,
            _RECORD_PUBLISHED_SQL,
            params | {"available": available, "expiring": expiring, "days": days, "level": level.value},
        )
    changes: list[StockChange] = []
    _publish_stock(key, threshold, available, expiring, days, level, before, now, changes)
    return changes


def stock_event_interval() -> timedelta:
    """The least time between two ``inventory.updated`` of one key sent for a decision (a crossing goes at once)."""
    return timedelta(seconds=settings.STOCK_EVENT_INTERVAL_SECONDS)


def _publish_due(last_published: datetime | None, now: datetime) -> bool:
    return last_published is None or now - last_published >= stock_event_interval()


def publish_coalesced_stock(*, now: datetime | None = None) -> int:
    """Send the ``inventory.updated`` that decisions left to this flush (their key had just been published).

    The worker runs it every second: a key's count reaches the hospitals at most
    ``STOCK_EVENT_INTERVAL_SECONDS`` (and a second) after it changed, one event for
    every change of those seconds. The mark is a column of the snapshot, written in
    the decision's transaction, so a worker that stops or dies loses nothing: the next
    flush, in any worker, sends it. Returns the number of keys published.
    """
    now = now or timezone.now()
    due = now - stock_event_interval()
    with transaction.atomic():
        keys = sorted(
            StockSnapshot.objects.filter(unpublished_since__isnull=False, as_of__lte=due).values_list(
                "component", "blood_group"
            )
        )
        published = 0
        for key in keys:  # in key order, as every writer locks them
            fast = _refresh_one_key_pg(key, 0, now, coalesce=False) if connection.vendor == "postgresql" else None
            published += len(fast if fast is not None else refresh_stock(keys=[key], now=now))
        return published


def _publish_stock(
    key: StockKey,
    threshold: StockThreshold | Limits,
    available: int,
    expiring: int,
    days: Decimal | None,
    level: StockLevel,
    before: StockLevel | None,
    now: datetime,
    changes: list[StockChange],
) -> None:
    subject = stock_key_of(*key)
    publish(
        topics.INVENTORY_UPDATED,
        InventoryUpdatedV1(
            component=key[0],
            blood_group=key[1],
            available_units=available,
            expiring_within_72h=expiring,
            level=level,
            as_of=now,
            days_of_supply=_float(days),
        ),
        subject=subject,
    )
    crossing = rules.crossing(before, level)
    if crossing is not None:
        publish(
            topics.LOW_STOCK,
            LowStockV1(
                component=key[0],
                blood_group=key[1],
                level=crossing,
                available_units=available,
                low_threshold=threshold.low_threshold,
                critical_threshold=threshold.critical_threshold,
                as_of=now,
                days_of_supply=_float(days),
                low_days=_float(threshold.low_days),
                critical_days=_float(threshold.critical_days),
            ),
            subject=subject,
        )
    changes.append(StockChange(key, available, level.value, crossing.value if crossing else None))


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _counts_written(snap: StockSnapshot) -> tuple:
    """What ``refresh_stock`` writes of a snapshot when nothing is published."""
    return snap.status_available, snap.dispatched_recently, snap.unpublished_since


def _keys_q(keys: Iterable[StockKey]) -> Q:
    """The rows of ``keys``; every key (the expiry sweep's recount): no condition at all.

    An OR of 40 (component, group) pairs cost the sweep more to build (Django's
    ``add_q``) and to run than the rows it would leave out; callers read the rows
    of their own keys only.
    """
    keys = set(keys)
    if keys >= _ALL_KEYS_SET:
        return Q()
    query = Q()
    for component, group in keys:
        query |= Q(component=component, blood_group=group)
    return query


# -- units ----------------------------------------------------------------------
def receive_unit(
    *,
    din: str,
    blood_group: str,
    volume_ml: int,
    collected_at: datetime,
    batch: str,
    by: str,
    product_code: str = "",
    component: str = "",
    expires_at: datetime | None = None,
    special_attributes: Iterable[str] = (),
    antigen_negative: Iterable[str] = (),
    irradiated_at: datetime | None = None,
    expiry_required: bool = False,
) -> Unit:
    """Add a unit to stock as AVAILABLE; raises ``ReceiptError`` (every field's problem) and records nothing.

    The rules are ``inventory.receipt.check_receipt``'s. The API and the admin receive with
    ``expiry_required`` (the label's expiry is the truth); seeds and tests may leave ``expires_at``
    out for the product's default shelf life.
    """
    now = timezone.now()
    receipt = check_receipt(
        din=din,
        blood_group=blood_group,
        volume_ml=volume_ml,
        collected_at=collected_at,
        batch=batch,
        expires_at=expires_at,
        product_code=product_code,
        component=component,
        special_attributes=special_attributes,
        antigen_negative=antigen_negative,
        irradiated_at=irradiated_at,
        now=now,
        expiry_required=expiry_required,
    )
    try:
        with transaction.atomic():
            unit = Unit.objects.create(**asdict(receipt), status=UnitStatus.AVAILABLE)
            UnitStatusChange.objects.create(unit=unit, to_status=UnitStatus.AVAILABLE, at=now, by=by, reason="received")
            refresh_stock(deltas={unit.stock_key: 1}, now=now)
    except IntegrityError as exc:
        if "unit_unique_isbt_product" not in str(exc):
            raise
        # Received twice at the same moment: the other receipt won.
        raise ReceiptError(
            {
                "din": [
                    f"a unit with DIN {receipt.din}, product code {receipt.product_code} and division "
                    f"{receipt.division} is already recorded"
                ]
            }
        ) from exc
    return unit


_ALLOWED_FROM = {
    UnitStatus.QUARANTINED: {UnitStatus.AVAILABLE},
    UnitStatus.AVAILABLE: {UnitStatus.QUARANTINED},
    UnitStatus.DISCARDED: {UnitStatus.AVAILABLE, UnitStatus.QUARANTINED, UnitStatus.EXPIRED},
}


def change_status(
    *, unit_ids: Iterable[uuid.UUID], to: UnitStatus, reason: str, by: str, detail: dict | None = None
) -> list[Unit]:
    """Quarantine, release (QUARANTINED → AVAILABLE) or discard units, all or none.

    An allocated unit is never changed here (release its allocation first).
    A released unit that expired meanwhile goes to EXPIRED instead.
    Raises ``TransitionError`` when any unit's status does not allow the change.
    """
    to = UnitStatus(to)
    if to not in _ALLOWED_FROM:
        raise TransitionError(f"units cannot be moved to {to} by hand")
    if not reason.strip():
        raise TransitionError("a reason is required")
    ids = sorted(set(unit_ids))
    now = timezone.now()
    with transaction.atomic():
        units = list(Unit.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
        if len(units) != len(ids):
            raise Unit.DoesNotExist("unknown unit")
        for unit in units:
            if unit.status not in _ALLOWED_FROM[to]:
                raise TransitionError(f"unit {unit.din} is {unit.status}; it cannot become {to}")
            if to == UnitStatus.AVAILABLE and unit.recalled_at is not None:
                raise TransitionError(f"unit {unit.din} is recalled; it never returns to stock")
        history = []
        deltas: Counter[StockKey] = Counter()
        for unit in units:
            target = to
            if to == UnitStatus.AVAILABLE and unit.expires_at <= now:
                target = UnitStatus.EXPIRED
            history.append(
                UnitStatusChange(
                    unit=unit,
                    from_status=unit.status,
                    to_status=target,
                    at=now,
                    by=by,
                    reason=reason,
                    detail=detail or {},
                )
            )
            deltas[unit.stock_key] += (target == UnitStatus.AVAILABLE) - (unit.status == UnitStatus.AVAILABLE)
            unit.status = target
            unit.save(update_fields=["status", "updated_at"])
        UnitStatusChange.objects.bulk_create(history)
        refresh_stock(keys={unit.stock_key for unit in units}, deltas=deltas, now=now)
    return units


def expire_units(*, now: datetime | None = None) -> int:
    """The expiry sweep: move every AVAILABLE unit past its expiry to EXPIRED; publish the stock change.

    Runs in the worker on a schedule and as ``manage.py expire_units``.
    Returns the number of units expired.
    """
    now = now or timezone.now()
    with transaction.atomic():
        expired = list(
            Unit.objects.select_for_update(skip_locked=True)
            .filter(status=UnitStatus.AVAILABLE, expires_at__lte=now)
            .only("id", "component", "blood_group")
        )
        if expired:
            Unit.objects.filter(pk__in=[unit.pk for unit in expired]).update(status=UnitStatus.EXPIRED, updated_at=now)
        UnitStatusChange.objects.bulk_create(
            UnitStatusChange(
                unit=unit,
                from_status=UnitStatus.AVAILABLE,
                to_status=UnitStatus.EXPIRED,
                at=now,
                by=SYSTEM_EXPIRY,
                reason="expired",
            )
            for unit in expired
        )
        # Every key, recounted: also heals any drift of the maintained counts.
        refresh_stock(keys=ALL_KEYS, now=now, recount=True)
    if expired:
        log.info("expiry sweep: %d units expired", len(expired))
    return len(expired)


class DiscardReasonError(ValueError):
    """A bank discard without a valid reason code, or OTHER without a note (HTTP 400)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__(str(errors))


def discard_units(*, unit_ids: Iterable[uuid.UUID], reason: str, note: str = "", by: str) -> list[Unit]:
    """Discard units from the bank's stock with a ``BankDiscardReason`` code (OTHER needs a ``note``).

    Raises ``DiscardReasonError`` (nothing changed) or, as ``change_status``, ``TransitionError``.
    """
    note = note.strip()
    if reason not in set(BankDiscardReason):
        raise DiscardReasonError({"reason": [f"one of {[r.value for r in BankDiscardReason]}"]})
    if reason == BankDiscardReason.OTHER and not note:
        raise DiscardReasonError({"note": ["required when the reason is OTHER"]})
    return change_status(
        unit_ids=unit_ids,
        to=UnitStatus.DISCARDED,
        reason=f"{reason}: {note}" if note else reason,
        by=by,
        detail={"reason": reason, **({"note": note} if note else {})},
    )


IRRADIABLE = frozenset({UnitStatus.AVAILABLE, UnitStatus.QUARANTINED})


def irradiate_unit(*, unit_id: uuid.UUID, by: str, irradiated_at: datetime | None = None) -> Unit:
    """Record that a unit in the bank's stock was irradiated: IRRADIATED, ``irradiated_at``, and for red cells
    (and whole blood) an expiry no later than ``IRRADIATED_RED_CELL_DAYS`` after irradiation.

    Raises ``TransitionError`` (already irradiated; not AVAILABLE or QUARANTINED) or ``ReceiptError``
    (an irradiation time before collection, in the future, or after which the unit would have expired).
    """
    now = timezone.now()
    irradiated_at = irradiated_at or now
    with transaction.atomic():
        unit = Unit.objects.select_for_update().get(pk=unit_id)
        if unit.status not in IRRADIABLE:
            raise TransitionError(f"unit {unit.din} is {unit.status}: only units in stock are irradiated")
        if UnitAttribute.IRRADIATED in unit.special_attributes:
            raise TransitionError(f"unit {unit.din} is irradiated already")
        if irradiated_at > now:
            raise ReceiptError({"irradiated_at": ["cannot be in the future"]})
        if irradiated_at < unit.collected_at:
            raise ReceiptError({"irradiated_at": ["cannot be before the unit was collected"]})
        expires_before = unit.expires_at
        if Component(unit.component) in RED_CELL_COMPONENTS:
            unit.expires_at = min(unit.expires_at, irradiated_at + irradiated_shelf_life())
            if unit.expires_at <= now:
                raise ReceiptError(
                    {
                        "irradiated_at": [
                            "the unit would have expired: an irradiated red-cell unit "
                            f"keeps {settings.IRRADIATED_RED_CELL_DAYS} days"
                        ]
                    }
                )
        unit.irradiated_at = irradiated_at
        unit.special_attributes = [
            a.value for a in UnitAttribute if a.value in {*unit.special_attributes, UnitAttribute.IRRADIATED}
        ]
        unit.save(update_fields=["irradiated_at", "special_attributes", "expires_at", "updated_at"])
        detail = {"irradiated_at": irradiated_at.isoformat()}
        if unit.expires_at != expires_before:
            detail |= {"expires_at_before": expires_before.isoformat(), "expires_at": unit.expires_at.isoformat()}
        UnitStatusChange.objects.create(
            unit=unit,
            from_status=unit.status,
            to_status=unit.status,
            at=now,
            by=by,
            reason="irradiated",
            step=Step.IRRADIATED.value,
            detail=detail,
        )
        # The expiry moved: the count expiring within 72 h may have.
        refresh_stock(keys=[unit.stock_key], now=now)
    return unit


class ThresholdError(ValueError):
    """Thresholds that would contradict one another (HTTP 400); nothing changed."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__(str(errors))


def update_thresholds(*, items: list[dict], by: str) -> list[StockThreshold]:
    """Set thresholds for the given keys; publish any level crossing this causes.

    Each item has ``low_threshold`` and ``critical_threshold``; ``low_days`` and ``critical_days``
    are changed when present (None clears them) and kept when left out. Raises ``ThresholdError``.
    """
    with transaction.atomic():
        keys = [(item["component"], item["blood_group"]) for item in items]
        ensure_stock_keys()
        changed = []
        # Key order, like every other writer of these rows: concurrent admins cannot deadlock.
        for item in sorted(items, key=lambda item: (item["component"], item["blood_group"])):
            threshold = StockThreshold.objects.select_for_update().get(
                component=item["component"], blood_group=item["blood_group"]
            )
            threshold.low_threshold = item["low_threshold"]
            threshold.critical_threshold = item["critical_threshold"]
            for name in ("low_days", "critical_days"):
                if name in item:
                    setattr(threshold, name, item[name])
            low_days, critical_days = threshold.low_days, threshold.critical_days
            if low_days is not None and critical_days is not None and critical_days > low_days:
                raise ThresholdError(
                    {"critical_days": [f"{threshold.component} {threshold.blood_group}: must not be above low_days"]}
                )
            threshold.save(
                update_fields=["low_threshold", "critical_threshold", "low_days", "critical_days", "updated_at"]
            )
            changed.append(threshold)
        refresh_stock(keys=keys)
    log.info("thresholds changed by %s: %s", by, keys)
    return changed


def ensure_products() -> int:
    """Add the seed products (``inventory.products.SEED_PRODUCTS``) missing from the PDC table; keep the others.

    The data migration seeds the table; this restores it where a test flushed it. Returns how many were added.
    """
    existing = set(ProductDescription.objects.values_list("pdc", flat=True))
    defaults = set(ProductDescription.objects.filter(component_default=True).values_list("component", flat=True))
    added = [
        ProductDescription(
            pdc=seed.pdc,
            component=seed.component.value,
            description=seed.description,
            attributes=[a.value for a in seed.attributes],
            default_shelf_life=seed.shelf_life,
            component_default=seed.component_default and seed.component.value not in defaults,
        )
        for seed in SEED_PRODUCTS
        if seed.pdc not in existing
    ]
    ProductDescription.objects.bulk_create(added, ignore_conflicts=True)
    return len(added)
