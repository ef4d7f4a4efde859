"""The bank-stock read model, kept from the bank's stock events, and its API."""

from datetime import timedelta

import pytest
from blood_requests.handlers import HANDLERS
from django.utils import timezone
from testing_support.factories import inventory_event, low_stock_event

from bank_stock.models import BankStock, StockAlert

pytestmark = pytest.mark.django_db

URL = "/api/v1/bank-stock/"


def _handle(event) -> None:
    HANDLERS[event.type](event)


def test_an_inventory_update_is_stored_per_component_and_group(api):
    _handle(inventory_event(component="PLASMA", blood_group="AB+", available=7, level="OK"))

    (row,) = api.get(URL).data["results"]
    assert (row["component"], row["blood_group"], row["available_units"], row["level"]) == ("PLASMA", "AB+", 7, "OK")
    assert row["as_of"]


def test_an_older_count_never_overwrites_a_newer_one():
    now = timezone.now()
    _handle(inventory_event(available=5, as_of=now))
    _handle(inventory_event(available=9, as_of=now - timedelta(minutes=1)))

    assert BankStock.objects.get().available_units == 5


def test_a_low_stock_crossing_is_an_alert_and_sets_the_level():
    _handle(inventory_event(available=12, level="OK", as_of=timezone.now() - timedelta(seconds=5)))
    _handle(low_stock_event(level="CRITICAL", available=2))

    stock = BankStock.objects.get()
    assert (stock.level, stock.available_units) == ("CRITICAL", 2)
    assert StockAlert.objects.get().level == "CRITICAL"


def test_a_recovery_sets_the_level_back_to_ok():
    _handle(low_stock_event(level="LOW", available=6, as_of=timezone.now() - timedelta(seconds=5)))
    _handle(low_stock_event(level="RECOVERED", available=15))

    assert BankStock.objects.get().level == "OK"
    assert list(StockAlert.objects.values_list("level", flat=True)) == ["RECOVERED", "LOW"]


def test_the_same_alert_event_twice_is_one_alert():
    event = low_stock_event()
    _handle(event)
    _handle(event)
    assert StockAlert.objects.count() == 1


def test_bank_stock_is_filterable_and_needs_hospital_staff(api, outsider_api):
    _handle(inventory_event(blood_group="O-", level="LOW", available=3))
    _handle(inventory_event(blood_group="A+", level="OK", available=30))

    assert [r["blood_group"] for r in api.get(URL, {"level": "LOW"}).data["results"]] == ["O-"]
    assert outsider_api.get(URL).status_code == 403


def test_days_of_supply_comes_from_the_inventory_update_and_is_null_when_absent(api):
    now = timezone.now()
    _handle(inventory_event(blood_group="O-", available=9, days_of_supply=2.25, as_of=now - timedelta(minutes=1)))
    _handle(inventory_event(blood_group="A+", available=3))

    rows = {row["blood_group"]: row for row in api.get(URL).data["results"]}
    assert rows["O-"]["days_of_supply"] == 2.3
    assert rows["A+"]["days_of_supply"] is None

    _handle(inventory_event(blood_group="O-", available=0, days_of_supply=None, as_of=now))
    assert api.get(URL, {"blood_group": "O-"}).data["results"][0]["days_of_supply"] is None


def test_a_newer_or_equally_recent_count_updates_the_row_in_one_statement(django_assert_num_queries):
    then = timezone.now() - timedelta(minutes=1)
    _handle(inventory_event(blood_group="B-", available=4, level="LOW", as_of=then))
    _handle(inventory_event(blood_group="B+", available=8, as_of=then))  # another key: untouched below
    before = BankStock.objects.get(blood_group="B-").updated_at

    with django_assert_num_queries(1):  # the hand-written UPDATE; no locked read
        _handle(inventory_event(blood_group="B-", available=11, level="OK", days_of_supply=3.05, as_of=then))

    row = BankStock.objects.get(blood_group="B-")
    assert (row.available_units, row.expiring_within_72h, row.level, row.as_of) == (11, 1, "OK", then)
    assert str(row.days_of_supply) == "3.1"  # rounded half up, as before
    assert row.updated_at > before
    assert BankStock.objects.get(blood_group="B+").available_units == 8
