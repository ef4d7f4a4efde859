"""Pure rules of ISBT 128 product codes and days of supply (no database)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from inventory import rules
from inventory.products import SEED_PRODUCTS, InvalidProductCode, parse_product_code
from shared_events.enums import Component, StockLevel


@pytest.mark.parametrize(
    ("code", "pdc", "donation", "division"),
    [
        ("E0398V00", "E0398", "V", "00"),
        ("EA123V00", "EA123", "V", "00"),
        ("E3087VA0", "E3087", "V", "A0"),
        ("E3087VZ0", "E3087", "V", "Z0"),
        ("E3087VAb", "E3087", "V", "Ab"),
        ("E03980Zz", "E0398", "0", "Zz"),
    ],
)
def test_a_product_code_is_its_pdc_type_of_donation_and_division(code, pdc, donation, division):
    parsed = parse_product_code(code)
    assert (parsed.pdc, parsed.donation_type, parsed.division, parsed.code) == (pdc, donation, division, code)


@pytest.mark.parametrize(
    ("code", "part"),
    [
        ("E0398V0", "8 characters"),
        ("E0398V000", "8 characters"),
        ("", "8 characters"),
        ("e0398V00", "Product Description Code"),
        ("X0398V00", "Product Description Code"),
        ("E03a8V00", "Product Description Code"),  # PDC characters are upper case
        ("E0398-00", "type of donation"),
        ("E0398V0A", "division"),  # second level without a first
        ("E0398Va0", "division"),  # first level is upper case
        ("E0398VAB", "division"),  # second level is lower case
        ("E0398VA1", "division"),
    ],
)
def test_a_malformed_product_code_is_refused_saying_which_part(code, part):
    with pytest.raises(InvalidProductCode, match=part):
        parse_product_code(code)


def test_the_seed_has_exactly_one_default_product_per_component():
    defaults = [seed.component for seed in SEED_PRODUCTS if seed.component_default]
    assert sorted(defaults) == sorted(Component)
    assert len({seed.pdc for seed in SEED_PRODUCTS}) == len(SEED_PRODUCTS)


@pytest.mark.parametrize(
    ("available", "dispatched", "days"),
    [
        (10, 28, Decimal("10.0")),  # one a day
        (3, 56, Decimal("1.5")),  # two a day
        (1, 3, Decimal("9.3")),  # 9.33...
        (2, 3, Decimal("18.7")),  # 18.66... rounds up
        (1, 16, Decimal("1.8")),  # exactly 1.75: half up
        (0, 5, Decimal("0.0")),
        (5, 0, None),  # nothing dispatched: no days of supply
        (-1, 5, Decimal("0.0")),  # expired units counted out below zero never give negative days
    ],
)
def test_days_of_supply_is_available_over_the_mean_daily_dispatch_to_one_decimal(available, dispatched, days):
    assert rules.days_of_supply(available, dispatched) == days


@pytest.mark.parametrize(
    ("available", "days", "level"),
    [
        (20, None, StockLevel.OK),  # nothing dispatched: only units count
        (20, Decimal("5.0"), StockLevel.OK),
        (20, Decimal("3.0"), StockLevel.LOW),  # plenty of units, few days: LOW
        (20, Decimal("1.0"), StockLevel.CRITICAL),
        (8, Decimal("9.0"), StockLevel.LOW),  # low by units, fine by days: the worse
        (3, Decimal("9.0"), StockLevel.CRITICAL),
        (8, Decimal("0.5"), StockLevel.CRITICAL),
    ],
)
def test_the_level_is_the_worse_of_the_level_by_units_and_by_days(available, days, level):
    assert (
        rules.stock_level(
            available, low=10, critical=4, days=days, low_days=Decimal("3.0"), critical_days=Decimal("1.0")
        )
        == level
    )


def test_without_thresholds_in_days_only_units_decide():
    assert rules.stock_level(20, low=10, critical=4, days=Decimal("0.1")) == StockLevel.OK
    assert rules.stock_level(20, low=10, critical=4, days=Decimal("0.1"), low_days=Decimal("1")) == StockLevel.LOW
