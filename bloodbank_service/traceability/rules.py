"""Pure traceability rules: whether a returned unit may go back to stock, and recall outcomes (no Django)."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared_events.enums import Component, WasteReason

QUARANTINED, WASTED = "QUARANTINED", "WASTED"

# Components kept at 1-6 °C: out of controlled storage longer than the limit, they are not re-issued.
TIME_LIMITED = frozenset({Component.RED_CELLS, Component.WHOLE_BLOOD})


def return_decision(
    *,
    component: str,
    left_storage_at: datetime,
    returned_at: datetime,
    cold_chain_intact: bool,
    expires_at: datetime,
    recalled: bool,
    limit_minutes: int,
) -> tuple[str, WasteReason | None]:
    """The bank's decision on a returned unit: (``QUARANTINED`` for inspection, None) or (``WASTED``, why).

    A recalled unit stays quarantined (the recall decides its end). Otherwise an
    expired unit is wasted; a broken cold chain (for plasma and cryo: thawed;
    for platelets: refrigerated or below 20 °C) is a temperature excursion; red
    cells and whole blood out of storage longer than ``limit_minutes`` were not
    required and out too long.
    """
    if recalled:
        return QUARANTINED, None
    if expires_at <= returned_at:
        return WASTED, WasteReason.EXPIRED
    if not cold_chain_intact:
        return WASTED, WasteReason.TEMPERATURE_EXCURSION
    if Component(component) in TIME_LIMITED and returned_at - left_storage_at > timedelta(minutes=limit_minutes):
        return WASTED, WasteReason.NOT_REQUIRED_OUT_TOO_LONG
    return QUARANTINED, None


# Recall outcomes (transfusion.md section 4).
QUARANTINED_AT_BANK = "QUARANTINED_AT_BANK"
DISCARDED_AT_BANK = "DISCARDED_AT_BANK"
ACCOUNTED = frozenset({QUARANTINED_AT_BANK, DISCARDED_AT_BANK, "TRANSFUSED", "WASTED", "RETURNED"})
AT_HOSPITAL_STATUSES = frozenset({"ISSUED", "TRANSFUSED", "WASTED"})


def bank_outcome(*, status: str, issued: bool) -> str | None:
    """What the bank itself can answer for a recalled unit; None: the hospital it was issued to must answer.

    ``issued``: the unit is (still) issued to a hospital (a live allocation of a dispatched request).
    A unit the bank wasted after a return, or discarded or expired in stock, is disposed of at the bank.
    """
    if issued and status in AT_HOSPITAL_STATUSES:
        return None
    if status in ("AVAILABLE", "ALLOCATED", "QUARANTINED"):
        return QUARANTINED_AT_BANK
    return DISCARDED_AT_BANK
