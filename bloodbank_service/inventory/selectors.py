"""Reads of the inventory: unit lists, the product table, dispatches and the stock picture."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from inventory import rules
from inventory.models import ProductDescription, StockThreshold, Unit, UnitStatus, UnitStatusChange
from shared_events.enums import BloodGroup, Component, UnitAttribute

StockKey = tuple[str, str]


def units() -> QuerySet[Unit]:
    return Unit.objects.all().order_by("expires_at", "din")


def products() -> QuerySet[ProductDescription]:
    """The configured PDC table."""
    return ProductDescription.objects.all().order_by("component", "pdc")


def dispatched_counts(keys: Iterable[StockKey] | None = None, *, now: datetime) -> dict[StockKey, int]:
    """Units dispatched (moved to ISSUED) in the ``rules.DISPATCH_WINDOW`` before ``now``, per stock key.

    From the status history (the partial index ``history_dispatch_idx`` holds exactly those rows); a
    unit issued, returned and issued again counts twice: it was dispatched twice.
    """
    rows = UnitStatusChange.objects.filter(to_status=UnitStatus.ISSUED, at__gt=now - rules.DISPATCH_WINDOW).exclude(
        from_status=UnitStatus.ISSUED
    )
    if keys is not None:
        keys = list(keys)
        rows = rows.filter(unit__component__in={key[0] for key in keys}, unit__blood_group__in={key[1] for key in keys})
    return {
        (row["unit__component"], row["unit__blood_group"]): row["n"]
        for row in rows.values("unit__component", "unit__blood_group").annotate(n=Count("id"))
    }


def stock_overview(*, now: datetime | None = None) -> list[dict]:
    """Every component and group: available, allocated, expiring within 72 h, days of supply, thresholds,
    level, and available units per special attribute."""
    now = now or timezone.now()
    soon = now + rules.EXPIRING_SOON
    available = Q(status=UnitStatus.AVAILABLE, expires_at__gt=now)
    per_attribute = {
        f"attr_{attribute.value}": Count("id", filter=available & Q(special_attributes__contains=[attribute.value]))
        for attribute in UnitAttribute
    }
    counts = {
        (row["component"], row["blood_group"]): row
        for row in Unit.objects.filter(status__in=[UnitStatus.AVAILABLE, UnitStatus.ALLOCATED])
        .values("component", "blood_group")
        .annotate(
            available=Count("id", filter=available),
            allocated=Count("id", filter=Q(status=UnitStatus.ALLOCATED)),
            expiring=Count("id", filter=available & Q(expires_at__lte=soon)),
            **per_attribute,
        )
    }
    dispatched = dispatched_counts(now=now)
    thresholds = {(t.component, t.blood_group): t for t in StockThreshold.objects.all()}
    rows = []
    for component in Component:
        for group in BloodGroup:
            key = (component.value, group.value)
            row = counts.get(key, {})
            threshold = thresholds.get(key)
            if threshold is not None:
                low, critical = threshold.low_threshold, threshold.critical_threshold
                low_days, critical_days = threshold.low_days, threshold.critical_days
            else:
                (low, critical), low_days, critical_days = rules.default_thresholds(component, group), None, None
            count = row.get("available", 0)
            days = rules.days_of_supply(count, dispatched.get(key, 0))
            level = rules.stock_level(
                count, low=low, critical=critical, days=days, low_days=low_days, critical_days=critical_days
            )
            rows.append(
                {
                    "component": component.value,
                    "blood_group": group.value,
                    "available_units": count,
                    "allocated_units": row.get("allocated", 0),
                    "expiring_within_72h": row.get("expiring", 0),
                    "days_of_supply": _float(days),
                    "low_threshold": low,
                    "critical_threshold": critical,
                    "low_days": _float(low_days),
                    "critical_days": _float(critical_days),
                    "level": level.value,
                    "by_attribute": {a.value: row.get(f"attr_{a.value}", 0) for a in UnitAttribute},
                }
            )
    return rows


def _float(value) -> float | None:
    return None if value is None else float(value)


THRESHOLD_FIELDS = ("component", "blood_group", "low_threshold", "critical_threshold", "low_days", "critical_days")


def thresholds() -> list[dict]:
    """Thresholds of every key (defaults where an admin has set none)."""
    return [{key: row[key] for key in THRESHOLD_FIELDS} for row in stock_overview()]
