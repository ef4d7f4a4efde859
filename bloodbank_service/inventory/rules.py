"""Pure stock rules: shelf lives, default thresholds and stock levels (no Django import)."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared_events.enums import BloodGroup, Component, StockCrossing, StockLevel

SHELF_LIFE: dict[Component, timedelta] = {
    Component.WHOLE_BLOOD: timedelta(days=35),
    Component.RED_CELLS: timedelta(days=42),
    Component.PLATELETS: timedelta(days=5),
    Component.PLASMA: timedelta(days=365),
    Component.CRYO: timedelta(days=365),
}

# The longest shelf life a label may show, by component (transfusion.md section 9, the longest of each
# row; whole blood: domain.md). A later expiry is a typing or scanning error, not a product.
LONGEST_SHELF_LIFE: dict[Component, timedelta] = {
    Component.WHOLE_BLOOD: timedelta(days=35),
    Component.RED_CELLS: timedelta(days=42),  # additive solution (AS, US)
    Component.PLATELETS: timedelta(days=7),  # with approved bacterial testing or pathogen reduction
    Component.PLASMA: timedelta(days=3 * 365 + 1),  # frozen, 36 months (UK, EU)
    Component.CRYO: timedelta(days=3 * 365 + 1),
}


def expiry_problem(component: Component, *, collected_at: datetime, expires_at: datetime, now: datetime) -> str | None:
    """Why a unit with this label cannot be received (None when it can): already expired, or an expiry
    beyond the longest shelf life of its component counted from collection."""
    if expires_at <= now:
        return "the unit has already expired"
    longest = LONGEST_SHELF_LIFE[Component(component)]
    if expires_at > collected_at + longest:
        return f"more than {longest.days} days after collected_at: beyond the longest shelf life of {component}"
    return None


_RED_CELL_THRESHOLDS: dict[BloodGroup, tuple[int, int]] = {
    BloodGroup.O_NEG: (10, 4),
    BloodGroup.O_POS: (20, 8),
    BloodGroup.A_POS: (15, 6),
}
_OTHER_RED_CELLS = (5, 2)

EXPIRING_SOON = timedelta(hours=72)


def default_thresholds(component: Component, group: BloodGroup) -> tuple[int, int]:
    """(low, critical) par levels: red cells per domain.md, other components half of that."""
    low, critical = _RED_CELL_THRESHOLDS.get(group, _OTHER_RED_CELLS)
    if component != Component.RED_CELLS:
        low, critical = low // 2, critical // 2
    return low, critical


def stock_level(available: int, *, low: int, critical: int) -> StockLevel:
    """CRITICAL at or below the critical threshold, LOW at or below the low one, else OK."""
    if available <= critical:
        return StockLevel.CRITICAL
    if available <= low:
        return StockLevel.LOW
    return StockLevel.OK


def crossing(before: StockLevel | None, after: StockLevel) -> StockCrossing | None:
    """The low-stock event to send when the level moves from ``before`` to ``after``, if any.

    ``before`` is None when nothing was published for the key yet: then a
    LOW or CRITICAL level is announced (it crossed from the unknown), OK is not.
    """
    if before == after:
        return None
    if after == StockLevel.OK:
        return StockCrossing.RECOVERED if before is not None else None
    if after == StockLevel.CRITICAL:
        return StockCrossing.CRITICAL
    # after LOW: from OK or unknown it is a fall; from CRITICAL it is a partial
    # recovery, still below par: announce it as LOW so readers see the new level.
    return StockCrossing.LOW
