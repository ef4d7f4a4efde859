"""Stock levels, crossings and default thresholds (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inventory import rules
from inventory.rules import crossing, default_thresholds, stock_level
from shared_events.enums import BloodGroup, Component, StockCrossing, StockLevel


@pytest.mark.parametrize(
    ("group", "expected"),
    [(BloodGroup.O_NEG, (10, 4)), (BloodGroup.O_POS, (20, 8)), (BloodGroup.A_POS, (15, 6)), (BloodGroup.B_NEG, (5, 2))],
)
def test_red_cell_default_thresholds_follow_the_policy(group, expected):
    assert default_thresholds(Component.RED_CELLS, group) == expected


def test_other_components_default_to_half_the_red_cell_thresholds():
    assert default_thresholds(Component.PLASMA, BloodGroup.O_POS) == (10, 4)
    assert default_thresholds(Component.PLATELETS, BloodGroup.O_NEG) == (5, 2)


@pytest.mark.parametrize(
    ("available", "level"),
    [(0, "CRITICAL"), (4, "CRITICAL"), (5, "LOW"), (10, "LOW"), (11, "OK")],
)
def test_the_level_is_critical_at_or_below_critical_and_low_at_or_below_low(available, level):
    assert stock_level(available, low=10, critical=4) == StockLevel(level)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("OK", "LOW", "LOW"),
        ("LOW", "CRITICAL", "CRITICAL"),
        ("OK", "CRITICAL", "CRITICAL"),
        ("LOW", "OK", "RECOVERED"),
        ("CRITICAL", "OK", "RECOVERED"),
        ("OK", "OK", None),
        ("LOW", "LOW", None),
        ("CRITICAL", "CRITICAL", None),
    ],
)
def test_a_low_stock_event_is_due_on_crossings_only(before, after, expected):
    result = crossing(StockLevel(before), StockLevel(after))
    assert result == (StockCrossing(expected) if expected else None)


def test_a_first_level_below_par_is_announced_and_a_first_ok_is_not():
    assert crossing(None, StockLevel.LOW) == StockCrossing.LOW
    assert crossing(None, StockLevel.OK) is None


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("component", "days"),
    [("RED_CELLS", 42), ("PLATELETS", 7), ("PLASMA", 1096), ("CRYO", 1096), ("WHOLE_BLOOD", 35)],
)
def test_an_expiry_beyond_the_longest_shelf_life_of_the_product_is_refused(component, days):
    collected = NOW - timedelta(days=1)
    assert (
        rules.expiry_problem(component, collected_at=collected, expires_at=collected + timedelta(days=days), now=NOW)
        is None
    )
    too_late = collected + timedelta(days=days, minutes=1)
    assert "longest shelf life" in rules.expiry_problem(component, collected_at=collected, expires_at=too_late, now=NOW)


def test_a_unit_already_expired_on_receipt_is_refused():
    problem = rules.expiry_problem("RED_CELLS", collected_at=NOW - timedelta(days=43), expires_at=NOW, now=NOW)
    assert problem == "the unit has already expired"
