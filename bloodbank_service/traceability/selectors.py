"""Reads of traceability: a DIN's whole chain, overdue units, recalls."""

from __future__ import annotations

from typing import Any

from allocation.models import BankRequest
from django.db.models import Prefetch, QuerySet
from inventory.lifecycle import display_actor, step_of
from inventory.models import Unit, UnitStatusChange

from traceability import rules
from traceability.models import Recall, RecallStatus, RecallUnit


def unit_trace(*, din: str) -> dict[str, Any]:
    """``{din, units}``: every unit of the DIN with its events in time order. Raises ``Unit.DoesNotExist``."""
    units = list(
        Unit.objects.filter(din=din)
        .order_by("component", "pk")
        .prefetch_related(Prefetch("history", queryset=UnitStatusChange.objects.order_by("at", "id")))
    )
    if not units:
        raise Unit.DoesNotExist(din)
    request_ids = {row.request_id for unit in units for row in unit.history.all() if row.request_id}
    hospitals = dict(BankRequest.objects.filter(pk__in=request_ids).values_list("request_id", "hospital_id"))
    return {
        "din": din,
        "units": [
            {
                "unit_id": unit.pk,
                "product_code": getattr(unit, "product_code", None) or None,
                "division": getattr(unit, "division", None) or "00",
                "component": unit.component,
                "blood_group": unit.blood_group,
                "status": unit.status,
                "recalled": unit.recalled_at is not None,
                "events": _in_time_order(
                    [
                        {
                            "step": step_of(
                                from_status=row.from_status, to_status=row.to_status, recorded_step=row.step
                            ).value,
                            "at": row.at,
                            "by": display_actor(row.by),
                            "hospital_id": hospitals.get(row.request_id),
                            "request_id": row.request_id,
                            "status": row.to_status,
                            "detail": row.detail or ({"reason": row.reason} if row.reason else {}),
                            "_order": row.id,
                        }
                        for row in unit.history.all()
                    ]
                ),
            }
            for unit in units
        ],
    }


def _in_time_order(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    events.sort(key=lambda event: (event["at"], event["_order"]))
    for event in events:
        del event["_order"]
    return events


def overdue_unit_ids(*, now=None):
    """Ids of units ISSUED longer than ``FATE_OVERDUE_HOURS`` ago (by their dispatch) with no fate yet."""
    from traceability.services import overdue_units

    return overdue_units(now=now).values("pk")


def recalls() -> QuerySet[Recall]:
    return Recall.objects.prefetch_related(
        Prefetch("units", queryset=RecallUnit.objects.select_related("unit").order_by("unit__din", "id"))
    )


def recall_summary(recall: Recall) -> dict[str, Any]:
    entries = list(recall.units.all())
    accounted = sum(entry.outcome in rules.ACCOUNTED for entry in entries)
    return {
        "units": len(entries),
        "accounted": accounted,
        "closable": recall.status == RecallStatus.OPEN and accounted == len(entries),
    }
