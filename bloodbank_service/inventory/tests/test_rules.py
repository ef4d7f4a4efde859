"""Stock levels, crossings and default thresholds (pure)."""

from __future__ import annotations

import pytest

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
