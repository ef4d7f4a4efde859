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
from shared_events import topics
from shared_events.django.outbox import publish
from shared_events.enums import WasteReason

if TYPE_CHECKING:
    from blood_requests.models import BloodRequest

log = logging.getLogger(__name__)


class UnitNotAvailable(Exception):
    """The unit's status does not allow this fate (or it has expired): the action is refused (409)."""


def receive_units(
    *, hospital: Hospital, source_request: BloodRequest, allocations: Iterable[dict[str, Any]]
) -> list[LocalUnit]:
    """Put the received units (as in the dispatched event) into the local inventory as AVAILABLE."""
    now = timezone.now()
    units = [
        LocalUnit(
            hospital=hospital,
            bank_unit_id=allocation["unit_id"],
            din=allocation["din"],
            product_code=allocation.get("product_code") or "",
            division=allocation.get("division") or "00",
            special_attributes=list(allocation.get("special_attributes") or []),
            component=allocation["component"],
            blood_group=allocation["blood_group"],
            expires_at=parse_datetime(allocation["expires_at"])
            if isinstance(allocation["expires_at"], str)
            else allocation["expires_at"],
            batch=allocation.get("batch") or "",
            source_request=source_request,
            received_at=now,
        )
        for allocation in allocations
    ]
    with transaction.atomic():
        created = LocalUnit.objects.bulk_create(units)
        for unit in created:
            _recall_hook(unit, by="system")
        return created


def _recall_hook(unit: LocalUnit, *, by: str) -> None:
    from recalls.services import unit_changed  # recalls builds on this app

    unit_changed(unit=unit, by=by)


def _entry(unit: LocalUnit) -> dict[str, Any]:
    return {
        "unit_id": unit.bank_unit_id,
        "din": unit.din,
        "product_code": unit.product_code or None,
        "division": unit.division or "00",
        "component": unit.component,
        "blood_group": unit.blood_group,
        "expires_at": unit.expires_at,
        "special_attributes": list(unit.special_attributes),
    }


def _publish_fate(unit: LocalUnit, *, by: str, at: datetime) -> None:
    fields: dict[str, Any] = {}
    if unit.status == LocalUnitStatus.TRANSFUSED:
        fields = {
            "patient_reference": unit.patient_reference,
            "started_at": unit.started_at,
            "ended_at": unit.ended_at,
            "adverse_reaction": unit.adverse_reaction,
        }
    elif unit.status == LocalUnitStatus.WASTED:
        fields = {"reason": unit.waste_reason}
    else:
        fields = {
            "left_storage_at": unit.left_storage_at,
            "returned_at": unit.returned_at,
            "cold_chain_intact": unit.cold_chain_intact,
        }
    publish(
        topics.UNIT_FATE,
        {
            "request_id": unit.source_request_id,
            "hospital_id": unit.hospital_id,
            "unit": _entry(unit),
            "fate": unit.status,
            "recorded_by": by,
            "recorded_at": at,
            **fields,
        },
        subject=unit.din,
        correlation_id=str(unit.source_request_id),
    )


def _record_fate(
    *,
    unit_id: UUID | str,
    hospital: Hospital,
    user: AbstractBaseUser | None,
    fate: LocalUnitStatus,
    allowed_from: frozenset[str],
    fields: dict[str, Any],
    note: str = "",
    check: Any = None,
    defaults: dict[str, Any] | None = None,
) -> LocalUnit:
    """Record ``fate`` once: the same fate with the same fields again changes nothing (no event); any other
    second fate, or a unit not in ``allowed_from``, raises ``UnitNotAvailable``.

    ``defaults`` are recorded with the fate but were not given by the caller (e.g. a return's time, now):
    a repeat of the same call is recognised without them.
    """
    with transaction.atomic():
        unit = LocalUnit.objects.select_for_update().get(id=unit_id, hospital=hospital)
        if unit.status == fate and all(getattr(unit, name) == value for name, value in fields.items()):
            return unit
        if unit.status not in allowed_from:
            why = " (recalled)" if unit.status == LocalUnitStatus.QUARANTINED else ""
            raise UnitNotAvailable(f"unit {unit.din} is {unit.status}{why}; it cannot be recorded as {fate}")
        if check is not None:
            check(unit)
        now = timezone.now()
        for name, value in ({**(defaults or {}), **fields}).items():
            setattr(unit, name, value)
        unit.status = fate
        unit.status_reason = note[:500]
        unit.status_changed_by = user
        unit.status_changed_at = now
        unit.save()
        by = user.get_username() if user is not None else "system"
        _publish_fate(unit, by=by, at=now)
        _recall_hook(unit, by=by)
    return unit


def transfuse_unit(
    *,
    unit_id: UUID | str,
    hospital: Hospital,
    user: AbstractBaseUser,
    patient_reference: str,
    started_at: datetime,
    ended_at: datetime | None = None,
    adverse_reaction: bool = False,
) -> LocalUnit:
    """Record that an AVAILABLE unit was transfused to ``patient_reference`` (opaque).

    Refused (``UnitNotAvailable``) for a quarantined (recalled) unit, one expired at
    ``started_at``, or a unit that already has another fate.
    """

    def not_expired(unit: LocalUnit) -> None:
        if unit.expires_at <= started_at:
            raise UnitNotAvailable(f"unit {unit.din} had expired at {unit.expires_at:%Y-%m-%d %H:%M} UTC")

    return _record_fate(
        unit_id=unit_id,
        hospital=hospital,
        user=user,
        fate=LocalUnitStatus.TRANSFUSED,
        allowed_from=frozenset({LocalUnitStatus.AVAILABLE}),
        fields={
            "patient_reference": patient_reference,
            "started_at": started_at,
            "ended_at": ended_at,
            "adverse_reaction": adverse_reaction,
        },
        check=not_expired,
    )


def discard_unit(
    *, unit_id: UUID | str, hospital: Hospital, user: AbstractBaseUser | None, reason: str, note: str = ""
) -> LocalUnit:
    """Record that an AVAILABLE or QUARANTINED unit was wasted, with a coded ``reason``."""
    return _record_fate(
        unit_id=unit_id,
        hospital=hospital,
        user=user,
        fate=LocalUnitStatus.WASTED,
        allowed_from=frozenset({LocalUnitStatus.AVAILABLE, LocalUnitStatus.QUARANTINED}),
        fields={"waste_reason": reason},
        note=note,
    )


def return_unit(
    *,
    unit_id: UUID | str,
    hospital: Hospital,
    user: AbstractBaseUser,
    left_storage_at: datetime,
    cold_chain_intact: bool,
    returned_at: datetime | None = None,
    note: str = "",
) -> LocalUnit:
    """Send an AVAILABLE or QUARANTINED unit back to the bank, which decides whether it goes back to stock.

    ``returned_at`` defaults to now (never before ``left_storage_at``); a repeat of the same call without
    it is the same return (200, nothing sent again), not a second fate.
    """
    fields: dict[str, Any] = {"left_storage_at": left_storage_at, "cold_chain_intact": cold_chain_intact}
    defaults: dict[str, Any] = {}
    if returned_at is None:
        defaults["returned_at"] = max(timezone.now(), left_storage_at)
    else:
        fields["returned_at"] = returned_at
    return _record_fate(
        unit_id=unit_id,
        hospital=hospital,
        user=user,
        fate=LocalUnitStatus.RETURNED,
        allowed_from=frozenset({LocalUnitStatus.AVAILABLE, LocalUnitStatus.QUARANTINED}),
        fields=fields,
        note=note,
        defaults=defaults,
    )


def expire_local_units(*, now: datetime | None = None) -> int:
    """Record every AVAILABLE unit past its expiry as WASTED (EXPIRED), each fate sent to the bank (periodic)."""
    now = now or timezone.now()
    with transaction.atomic():
        expired = list(
            LocalUnit.objects.select_for_update(skip_locked=True, of=("self",))  # not the hospitals' rows
            .filter(status=LocalUnitStatus.AVAILABLE, expires_at__lte=now)
            .select_related("hospital")
            .order_by("id")[:500]
        )
        for unit in expired:
            discard_unit(unit_id=unit.id, hospital=unit.hospital, user=None, reason=WasteReason.EXPIRED, note="expired")
    if expired:
        log.info("%d local unit(s) expired", len(expired))
    return len(expired)
