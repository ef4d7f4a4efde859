"""Pure stock rules: shelf lives, default thresholds, days of supply and stock levels (no Django import)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

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


# Days of supply (transfusion.md section 9): available / (units dispatched in this window / its days).
DISPATCH_WINDOW = timedelta(days=28)


def days_of_supply(available: int, dispatched: int, *, window_days: int = DISPATCH_WINDOW.days) -> Decimal | None:
    """``available`` over the mean daily dispatch, to one decimal (half up); None when nothing was dispatched.

    Integer arithmetic, so the SQL of the decision path (``inventory.services``) computes the very same value.
    """
    if dispatched <= 0:
        return None
    tenths = (20 * window_days * max(available, 0) + dispatched) // (2 * dispatched)
    return Decimal(tenths) / 10


def stock_level(
    available: int,
    *,
    low: int,
    critical: int,
    days: Decimal | None = None,
    low_days: Decimal | None = None,
    critical_days: Decimal | None = None,
) -> StockLevel:
    """The worse of the level by units and the level by days of supply.

    By units: CRITICAL at or below the critical threshold, LOW at or below the low one, else OK.
    By days: the same with ``days`` (None: nothing dispatched, no level by days) against
    ``critical_days``/``low_days`` (None: not set).
    """
    if available <= critical or (days is not None and critical_days is not None and days <= critical_days):
        return StockLevel.CRITICAL
    if available <= low or (days is not None and low_days is not None and days <= low_days):
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
