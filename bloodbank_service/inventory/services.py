"""Writes to the inventory: receiving units, status changes, the expiry sweep, stock events.

Every function runs in its own ``transaction.atomic()`` (joining the caller's
when there is one) and writes its events to the outbox in that transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from inventory import rules
from inventory.din import normalize_din
from inventory.models import StockSnapshot, StockThreshold, Unit, UnitStatus, UnitStatusChange
from inventory.products import default_product_code
from shared_events import topics
from shared_events.django.outbox import publish
from shared_events.enums import BloodGroup, Component, StockLevel
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


def ensure_stock_keys(keys: Iterable[StockKey] | None = None) -> None:
    """Create default thresholds and empty snapshots for ``keys`` (all keys by default); keep existing ones."""
    keys = list(keys) if keys is not None else list(ALL_KEYS)
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
    query = Q()
    for component, group in keys:
        query |= Q(component=component, blood_group=group)
    # Sorted keys, one statement: every writer locks in the same order, so no deadlock.
    locked = (
        StockSnapshot.objects.select_for_update(of=("self",))
        .select_related("threshold")
        .filter(query)
        .order_by("component", "blood_group")
    )
    rows = list(locked)
    if len(rows) < len(keys):
        ensure_stock_keys(keys)
        rows = list(locked.all())  # a fresh evaluation of the same query
    return {(row.component, row.blood_group): row for row in rows}


def refresh_stock(
    *,
    keys: Iterable[StockKey] = (),
    deltas: Mapping[StockKey, int] | None = None,
    now: datetime | None = None,
    recount: bool = False,
) -> list[StockChange]:
    """Publish the stock events due after a change; call it in the change's transaction, after the change.

    ``deltas`` gives, per key, how many units entered (+) or left (-) status
    AVAILABLE in this transaction; ``keys`` are further keys to look at
    (threshold changes). For each key: ``inventory.updated`` when its available
    count (not expired) or level changed since last published, and
    ``inventory.low_stock`` on a level crossing.

    The key's snapshot row is locked first, so writers of one key publish in
    commit order with exact counts. The AVAILABLE count is kept by deltas (no
    count over the whole stock on the decision path); only units expiring
    within 72 h are counted. ``recount`` counts everything instead (the
    expiry sweep does, every minute, so any drift heals).
    """
    deltas = {key: delta for key, delta in (deltas or {}).items() if delta}
    wanted = sorted(set(keys) | set(deltas))
    if not wanted:
        return []
    now = now or timezone.now()
    if connection.vendor == "postgresql" and len(wanted) == 1 and wanted[0] in deltas and not recount:
        fast = _refresh_one_key_pg(wanted[0], deltas[wanted[0]], now)
        if fast is not None:
            return fast
    soon = now + rules.EXPIRING_SOON
    changes: list[StockChange] = []
    with transaction.atomic(savepoint=False):
        snapshots = _locked_snapshots(wanted)
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
            threshold = snap.threshold
            level = rules.stock_level(available, low=threshold.low_threshold, critical=threshold.critical_threshold)
            before = StockLevel(snap.level) if snap.level else None
            fields = ["status_available"]
            if before != level or snap.available_units != available:
                _publish_stock(key, snap, available, row["expiring"], level, before, now, changes)
                fields += ["available_units", "expiring_within_72h", "level", "as_of"]
            if key in deltas or key in uncounted or len(fields) > 1:
                snap.save(update_fields=fields)
    return changes


# The decision hot path changes one key: one statement locks the snapshot row,
# applies the delta and counts the units near expiry (instead of four ORM queries).
_APPLY_DELTA_SQL = """
UPDATE inventory_stocksnapshot AS s
   SET status_available = s.status_available + %(delta)s
  FROM inventory_stockthreshold AS t
 WHERE t.id = s.threshold_id AND s.component = %(component)s AND s.blood_group = %(group)s
   AND s.status_available IS NOT NULL
RETURNING s.status_available, s.available_units, s.level, t.low_threshold, t.critical_threshold
"""
# Then, with the row locked (so this statement sees every committed change of the key),
# count the units near expiry and record what is about to be published. The CASE is
# rules.stock_level in SQL; the caller recomputes the level in Python and they agree
# (the crossing tests go through this path).
_RECORD_LEVEL_SQL = """
UPDATE inventory_stocksnapshot AS s
   SET available_units = s.status_available - near.expired,
       expiring_within_72h = near.expiring,
       level = CASE WHEN s.status_available - near.expired <= %(critical)s THEN 'CRITICAL'
                    WHEN s.status_available - near.expired <= %(low)s THEN 'LOW'
                    ELSE 'OK' END,
       as_of = %(now)s
  FROM (SELECT count(*) FILTER (WHERE expires_at <= %(now)s) AS expired,
               count(*) FILTER (WHERE expires_at > %(now)s) AS expiring
          FROM inventory_unit
         WHERE component = %(component)s AND blood_group = %(group)s AND status = 'AVAILABLE'
           AND expires_at <= %(soon)s) AS near
 WHERE s.component = %(component)s AND s.blood_group = %(group)s
RETURNING s.available_units, s.expiring_within_72h
"""


def _refresh_one_key_pg(key: StockKey, delta: int, now: datetime) -> list[StockChange] | None:
    """``refresh_stock`` for one key on PostgreSQL in two statements; None: take the general path."""
    params = {"delta": delta, "component": key[0], "group": key[1], "now": now, "soon": now + rules.EXPIRING_SOON}
    with connection.cursor() as cursor:
        cursor.execute(_APPLY_DELTA_SQL, params)
        row = cursor.fetchone()
        if row is None:
            return None  # no snapshot yet, or never counted
        _status_available, published, level_before, low, critical = row
        cursor.execute(_RECORD_LEVEL_SQL, params | {"low": low, "critical": critical})
        available, expiring = cursor.fetchone()
    level = rules.stock_level(available, low=low, critical=critical)
    before = StockLevel(level_before) if level_before else None
    if before == level and published == available:
        return []
    snap = StockSnapshot(
        component=key[0], blood_group=key[1], threshold=StockThreshold(low_threshold=low, critical_threshold=critical)
    )
    changes: list[StockChange] = []
    _publish_stock(key, snap, available, expiring, level, before, now, changes)
    return changes


def _publish_stock(
    key: StockKey,
    snap: StockSnapshot,
    available: int,
    expiring: int,
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
                low_threshold=snap.threshold.low_threshold,
                critical_threshold=snap.threshold.critical_threshold,
                as_of=now,
            ),
            subject=subject,
        )
    snap.available_units, snap.expiring_within_72h = available, expiring
    snap.level, snap.as_of = level.value, now
    changes.append(StockChange(key, available, level.value, crossing.value if crossing else None))


def _keys_q(keys: Iterable[StockKey]) -> Q:
    query = Q()
    for component, group in keys:
        query |= Q(component=component, blood_group=group)
    return query


# -- units ----------------------------------------------------------------------
def receive_unit(
    *,
    din: str,
    component: str,
    blood_group: str,
    volume_ml: int,
    collected_at: datetime,
    batch: str,
    by: str,
    expires_at: datetime | None = None,
) -> Unit:
    """Add a unit to stock as AVAILABLE (expiry defaults to the component's shelf life)."""
    din = normalize_din(din)
    expires_at = expires_at or collected_at + rules.SHELF_LIFE[Component(component)]
    now = timezone.now()
    with transaction.atomic():
        unit = Unit.objects.create(
            din=din,
            component=component,
            product_code=default_product_code(component),
            blood_group=blood_group,
            volume_ml=volume_ml,
            collected_at=collected_at,
            expires_at=expires_at,
            batch=batch,
            status=UnitStatus.AVAILABLE,
        )
        UnitStatusChange.objects.create(unit=unit, to_status=UnitStatus.AVAILABLE, at=now, by=by, reason="received")
        refresh_stock(deltas={unit.stock_key: 1}, now=now)
    return unit


_ALLOWED_FROM = {
    UnitStatus.QUARANTINED: {UnitStatus.AVAILABLE},
    UnitStatus.AVAILABLE: {UnitStatus.QUARANTINED},
    UnitStatus.DISCARDED: {UnitStatus.AVAILABLE, UnitStatus.QUARANTINED, UnitStatus.EXPIRED},
}


def change_status(*, unit_ids: Iterable[uuid.UUID], to: UnitStatus, reason: str, by: str) -> list[Unit]:
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
                UnitStatusChange(unit=unit, from_status=unit.status, to_status=target, at=now, by=by, reason=reason)
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


def update_thresholds(*, items: list[dict], by: str) -> list[StockThreshold]:
    """Set low/critical thresholds for the given keys; publish any level crossing this causes."""
    with transaction.atomic():
        keys = [(item["component"], item["blood_group"]) for item in items]
        ensure_stock_keys(keys)
        changed = []
        # Key order, like every other writer of these rows: concurrent admins cannot deadlock.
        for item in sorted(items, key=lambda item: (item["component"], item["blood_group"])):
            threshold = StockThreshold.objects.select_for_update().get(
                component=item["component"], blood_group=item["blood_group"]
            )
            threshold.low_threshold = item["low_threshold"]
            threshold.critical_threshold = item["critical_threshold"]
            threshold.save(update_fields=["low_threshold", "critical_threshold", "updated_at"])
            changed.append(threshold)
        refresh_stock(keys=keys)
    log.info("thresholds changed by %s: %s", by, keys)
    return changed
