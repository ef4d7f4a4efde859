"""Reads of the inventory: unit lists and the stock picture."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from inventory import rules
from inventory.models import StockThreshold, Unit, UnitStatus
from shared_events.enums import BloodGroup, Component


def units() -> QuerySet[Unit]:
    return Unit.objects.all().order_by("expires_at", "din")


def stock_overview(*, now: datetime | None = None) -> list[dict]:
    """Every component and group: available, allocated, expiring within 72 h, thresholds and level."""
    now = now or timezone.now()
    soon = now + rules.EXPIRING_SOON
    available = Q(status=UnitStatus.AVAILABLE, expires_at__gt=now)
    counts = {
        (row["component"], row["blood_group"]): row
        for row in Unit.objects.filter(status__in=[UnitStatus.AVAILABLE, UnitStatus.ALLOCATED])
        .values("component", "blood_group")
        .annotate(
            available=Count("id", filter=available),
            allocated=Count("id", filter=Q(status=UnitStatus.ALLOCATED)),
            expiring=Count("id", filter=available & Q(expires_at__lte=soon)),
        )
    }
    thresholds = {(t.component, t.blood_group): t for t in StockThreshold.objects.all()}
    rows = []
    for component in Component:
        for group in BloodGroup:
            key = (component.value, group.value)
            row = counts.get(key, {})
            threshold = thresholds.get(key)
            low, critical = (
                (threshold.low_threshold, threshold.critical_threshold)
                if threshold
                else rules.default_thresholds(component, group)
            )
            count = row.get("available", 0)
            rows.append(
                {
                    "component": component.value,
                    "blood_group": group.value,
                    "available_units": count,
                    "allocated_units": row.get("allocated", 0),
                    "expiring_within_72h": row.get("expiring", 0),
                    "low_threshold": low,
                    "critical_threshold": critical,
                    "level": rules.stock_level(count, low=low, critical=critical).value,
                }
            )
    return rows


def thresholds() -> list[dict]:
    """Thresholds of every key (defaults where an admin has set none)."""
    return [
        {key: row[key] for key in ("component", "blood_group", "low_threshold", "critical_threshold")}
        for row in stock_overview()
    ]
