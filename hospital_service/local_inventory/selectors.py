"""Reads on the hospital's local units."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from hospitals.models import Hospital

from local_inventory.models import LocalUnit, LocalUnitStatus


def local_units(*, hospital: Hospital) -> QuerySet[LocalUnit]:
    return LocalUnit.objects.filter(hospital=hospital).select_related("source_request")


def local_summary(*, hospital: Hospital) -> list[dict[str, object]]:
    """Counts per component and blood group: available, expiring within 72 h, and used up."""
    soon = timezone.now() + timedelta(hours=72)
    rows = (
        LocalUnit.objects.filter(hospital=hospital)
        .values("component", "blood_group")
        .annotate(
            available_units=Count("id", filter=Q(status=LocalUnitStatus.AVAILABLE)),
            expiring_within_72h=Count("id", filter=Q(status=LocalUnitStatus.AVAILABLE, expires_at__lte=soon)),
            transfused_units=Count("id", filter=Q(status=LocalUnitStatus.TRANSFUSED)),
            discarded_units=Count("id", filter=Q(status=LocalUnitStatus.WASTED) & ~Q(waste_reason="EXPIRED")),
            expired_units=Count("id", filter=Q(status=LocalUnitStatus.WASTED, waste_reason="EXPIRED")),
        )
        .order_by("component", "blood_group")
    )
    return list(rows)
