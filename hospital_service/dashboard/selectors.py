"""What the live dashboard shows, read in one place for the page and for its polling endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bank_stock.selectors import bank_stock, recent_stock_alerts
from blood_requests.models import CANCEL_REASON_CHOICES, StatusChange
from blood_requests.selectors import open_blood_requests, recent_decisions
from django.utils import timezone
from hospitals.models import Hospital
from local_inventory.models import LocalUnit, LocalUnitStatus
from local_inventory.selectors import local_summary, local_units
from recalls.models import HospitalRecall, HospitalRecallUnit

from shared_events.enums import BloodGroup, Component, RecallUnitState, WasteReason, choices


@dataclass(frozen=True)
class Alert:
    at: datetime
    severity: str  # "critical", "warning", "ok", "info": the badge colour
    title: str
    text: str


def _alerts(*, hospital: Hospital, limit: int = 10) -> list[Alert]:
    """Recent bank stock crossings and the bank's decisions on this hospital's requests, newest first."""
    severity_of = {"CRITICAL": "critical", "LOW": "warning", "RECOVERED": "ok"}
    alerts = [
        Alert(
            at=alert.as_of,
            severity=severity_of[alert.level],
            title=f"Bank stock {alert.level}",
            text=f"{alert.get_component_display()} {alert.blood_group}: {alert.available_units} unit(s) at the bank",
        )
        for alert in recent_stock_alerts(limit=limit)
    ]
    alerts += [_decision_alert(change) for change in recent_decisions(hospital=hospital, limit=limit)]
    return sorted(alerts, key=lambda a: a.at, reverse=True)[:limit]


_DECISION_SEVERITY = {"APPROVED": "ok", "PARTIALLY_APPROVED": "warning", "REJECTED": "critical"}


def _decision_alert(change: StatusChange) -> Alert:
    """A decision on a request (or on an MTP pack); an uncrossmatched issue is always critical: watch the patient."""
    blood_request = change.request
    if blood_request.is_mtp:
        what = f"MTP {blood_request.blood_group}"
        rejected = "bank rejected" in change.detail
        severity, title = ("critical", "MTP pack rejected") if rejected else ("warning", "MTP pack approved")
    else:
        what = (
            f"{blood_request.get_component_display()} {blood_request.blood_group}, "
            f"{blood_request.units} unit(s) requested"
        )
        severity = _DECISION_SEVERITY.get(change.status, "info")
        title = f"Request {change.get_status_display().lower()}"
    if "UNCROSSMATCHED" in change.detail:
        severity, title = "critical", f"{title}: UNCROSSMATCHED"
    return Alert(at=change.at, severity=severity, title=title, text=f"{what}: {change.detail}")


def _bank_stock_grid() -> dict[str, Any]:
    """Bank stock as a component-by-blood-group grid (None where the bank has not reported yet)."""
    by_key = {(row.component, row.blood_group): row for row in bank_stock()}
    groups = [g.value for g in BloodGroup]
    rows = [
        {
            "component": component.value,
            "label": component.value.replace("_", " ").title(),
            "cells": [by_key.get((component.value, group)) for group in groups],
        }
        for component in Component
    ]
    as_of = max((row.as_of for row in by_key.values()), default=None)
    return {"groups": groups, "rows": rows, "as_of": as_of, "reported": bool(by_key)}


@dataclass(frozen=True)
class OpenRecall:
    """A recall with units still to act on here: the banner over local stock."""

    recall: HospitalRecall
    quarantined: list[str]  # DINs held here, quarantined: waste or return them
    in_transit: list[str]  # DINs on their way: quarantined on arrival
    transfused: list[tuple[str, str]]  # (DIN, patient reference): the look-back


def _open_recalls(*, hospital: Hospital) -> list[OpenRecall]:
    """Recalls with a unit still quarantined here or in transit, newest first."""
    to_act = (RecallUnitState.QUARANTINED_HERE, RecallUnitState.IN_TRANSIT)
    recalls = HospitalRecall.objects.filter(hospital=hospital, units__state__in=to_act).distinct()
    found = []
    for recall in recalls.order_by("-issued_at")[:10]:
        units = list(recall.units.order_by("din", "id"))
        transfused = [u for u in units if u.state == RecallUnitState.TRANSFUSED]
        references = dict(
            LocalUnit.objects.filter(
                hospital=hospital, bank_unit_id__in=[u.bank_unit_id for u in transfused]
            ).values_list("bank_unit_id", "patient_reference")
        )
        found.append(
            OpenRecall(
                recall=recall,
                quarantined=[u.din for u in units if u.state == RecallUnitState.QUARANTINED_HERE],
                in_transit=[u.din for u in units if u.state == RecallUnitState.IN_TRANSIT],
                transfused=[(u.din, references.get(u.bank_unit_id, "")) for u in transfused],
            )
        )
    return found


def _units_in_hand(*, hospital: Hospital) -> list[LocalUnit]:
    """Units held here (available, or quarantined by a recall), each with ``recall`` set when one concerns it."""
    held = (LocalUnitStatus.AVAILABLE, LocalUnitStatus.QUARANTINED)
    units = list(local_units(hospital=hospital).filter(status__in=held)[:50])
    recalled = {
        entry.bank_unit_id: entry.recall
        for entry in HospitalRecallUnit.objects.filter(
            recall__hospital=hospital, bank_unit_id__in=[unit.bank_unit_id for unit in units]
        )
        .select_related("recall")
        .order_by("recall__issued_at")
    }
    for unit in units:
        unit.recall = recalled.get(unit.bank_unit_id)
    return units


def dashboard_state(*, hospital: Hospital) -> dict[str, Any]:
    """Everything the dashboard's live regions render."""
    return {
        "hospital": hospital,
        "requests": open_blood_requests(hospital=hospital),
        "local_summary": [row for row in local_summary(hospital=hospital) if row["available_units"]],
        "local_units": _units_in_hand(hospital=hospital),
        "open_recalls": _open_recalls(hospital=hospital),
        "bank_stock": _bank_stock_grid(),
        "alerts": _alerts(hospital=hospital),
        "waste_reasons": choices(WasteReason),
        "now": timezone.now(),
        "cancel_reason_choices": CANCEL_REASON_CHOICES,
    }
