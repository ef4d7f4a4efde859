"""Writes on the hospital's local units: receive, transfuse, discard, expire."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from hospitals.models import Hospital

from local_inventory.models import LocalUnit, LocalUnitStatus

if TYPE_CHECKING:
    from blood_requests.models import BloodRequest

log = logging.getLogger(__name__)


class UnitNotAvailable(Exception):
    """The unit is no longer AVAILABLE (or has expired): the action is refused (409)."""


def receive_units(
    *, hospital: Hospital, source_request: BloodRequest, allocations: Iterable[dict[str, Any]]
) -> list[LocalUnit]:
    """Put the allocated units (as in the approved event) into the local inventory as AVAILABLE."""
    now = timezone.now()
    units = [
        LocalUnit(
            hospital=hospital,
            bank_unit_id=allocation["unit_id"],
            din=allocation["din"],
            component=allocation["component"],
            blood_group=allocation["blood_group"],
            expires_at=parse_datetime(allocation["expires_at"])
            if isinstance(allocation["expires_at"], str)
            else allocation["expires_at"],
            batch=allocation.get("batch", ""),
            source_request=source_request,
            received_at=now,
        )
        for allocation in allocations
    ]
    with transaction.atomic():
        return LocalUnit.objects.bulk_create(units)


def _use_unit(
    *, unit_id: UUID | str, hospital: Hospital, user: AbstractBaseUser, target: LocalUnitStatus, reason: str
) -> LocalUnit:
    with transaction.atomic():
        unit = LocalUnit.objects.select_for_update().get(id=unit_id, hospital=hospital)
        now = timezone.now()
        if unit.status != LocalUnitStatus.AVAILABLE:
            raise UnitNotAvailable(f"unit {unit.din} is {unit.status}, not AVAILABLE")
        if target == LocalUnitStatus.TRANSFUSED and unit.expires_at <= now:
            raise UnitNotAvailable(f"unit {unit.din} expired at {unit.expires_at:%Y-%m-%d %H:%M} UTC")
        unit.status = target
        unit.status_reason = reason[:500]
        unit.status_changed_by = user
        unit.status_changed_at = now
        unit.save(update_fields=["status", "status_reason", "status_changed_by", "status_changed_at"])
    return unit


def transfuse_unit(*, unit_id: UUID | str, hospital: Hospital, user: AbstractBaseUser, reason: str = "") -> LocalUnit:
    """Record that an AVAILABLE, unexpired unit was transfused. Raises ``UnitNotAvailable``."""
    return _use_unit(unit_id=unit_id, hospital=hospital, user=user, target=LocalUnitStatus.TRANSFUSED, reason=reason)


def discard_unit(*, unit_id: UUID | str, hospital: Hospital, user: AbstractBaseUser, reason: str) -> LocalUnit:
    """Record that an AVAILABLE unit was wasted, with the reason. Raises ``UnitNotAvailable``."""
    return _use_unit(unit_id=unit_id, hospital=hospital, user=user, target=LocalUnitStatus.DISCARDED, reason=reason)


def expire_local_units(*, now: datetime | None = None) -> int:
    """Move every AVAILABLE unit past its expiry to EXPIRED; return how many (periodic task)."""
    now = now or timezone.now()
    with transaction.atomic():
        count = LocalUnit.objects.filter(status=LocalUnitStatus.AVAILABLE, expires_at__lte=now).update(
            status=LocalUnitStatus.EXPIRED, status_reason="expired", status_changed_at=now
        )
    if count:
        log.info("%d local unit(s) expired", count)
    return count
