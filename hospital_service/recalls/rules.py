"""The state a hospital reports for a recalled unit, from what it holds (pure)."""

from __future__ import annotations

from shared_events.enums import RecallUnitState

_BY_LOCAL_STATUS = {
    "AVAILABLE": RecallUnitState.QUARANTINED_HERE,  # quarantined as the recall arrives
    "QUARANTINED": RecallUnitState.QUARANTINED_HERE,
    "TRANSFUSED": RecallUnitState.TRANSFUSED,
    "WASTED": RecallUnitState.WASTED,
    "RETURNED": RecallUnitState.RETURNED,
}


def recall_state(local_status: str | None) -> RecallUnitState:
    """``None``: the unit has not been received here yet (in transit)."""
    return RecallUnitState.IN_TRANSIT if local_status is None else _BY_LOCAL_STATUS[local_status]
