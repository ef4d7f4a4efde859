"""Days of supply (transfusion.md section 9): counted from the dispatches in the status history,
in the stock API and the stock events, and thresholds in days; stock counts per special attribute."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from inventory import rules, selectors, services
from inventory.din import make_din
from inventory.models import StockSnapshot, UnitStatus, UnitStatusChange
from shared_events import topics
from shared_events.django.models import OutboxEvent
from shared_events.envelope import parse_event

KEY = ("RED_CELLS", "A+")  # thresholds 15/6


def events(event_type: str, subject: str = "RED_CELLS:A+") -> list:
    return [
        parse_event(bytes(row.value)).data
        for row in OutboxEvent.objects.filter(event_type=event_type, key=subject).order_by("id")
    ]


def dispatched(unit_factory, count: int, *, days_ago: float = 1, group: str = "A+", component: str = "RED_CELLS"):
    """``count`` units moved to ISSUED ``days_ago``, as the dispatch records it in the history."""
    at = datetime.now(UTC) - timedelta(days=days_ago)
    units = unit_factory.create_batch(count, component=component, blood_group=group, status=UnitStatus.ISSUED)
    UnitStatusChange.objects.bulk_create(
        UnitStatusChange(unit=u, from_status="ALLOCATED", to_status="ISSUED", at=at, by="bank_clerk", step="DISPATCHED")
        for u in units
    )
    return units


def row_of(client, key=KEY) -> dict:
    return next(r for r in client.get("/api/v1/stock/").json() if (r["component"], r["blood_group"]) == key)


@pytest.mark.django_db
class TestStockApi:
    def test_days_of_supply_is_available_over_the_dispatches_of_the_last_28_days(self, bank_client, unit_factory):
        unit_factory.create_batch(20, blood_group="A+")
        assert row_of(bank_client)["days_of_supply"] is None  # nothing dispatched: unknown, not infinite
        dispatched(unit_factory, 40, days_ago=3)
        dispatched(unit_factory, 16, days_ago=27.9)
        dispatched(unit_factory, 30, days_ago=29)  # outside the window
        # Events of an issued unit that keep it ISSUED (received by the hospital) are no dispatch.
        unit = dispatched(unit_factory, 1, days_ago=2)[0]
        UnitStatusChange.objects.create(
            unit=unit,
            from_status="ISSUED",
            to_status="ISSUED",
            at=datetime.now(UTC),
            by="h",
            step="RECEIVED_BY_HOSPITAL",
        )
        row = row_of(bank_client)
        assert row["available_units"] == 20
        assert row["days_of_supply"] == 9.8  # 20 / (57 / 28) = 9.82
        assert row_of(bank_client, ("RED_CELLS", "B+"))["days_of_supply"] is None

    def test_thresholds_in_days_make_the_level_the_worse_of_the_two(self, bank_client, unit_factory):
        unit_factory.create_batch(20, blood_group="A+")  # 20 > 15: OK by units
        dispatched(unit_factory, 280)  # 10 a day: 2.0 days
        assert row_of(bank_client)["level"] == "OK"
        change = [
            {
                "component": "RED_CELLS",
                "blood_group": "A+",
                "low_threshold": 15,
                "critical_threshold": 6,
                "low_days": 3,
                "critical_days": 1.5,
            }
        ]
        assert bank_client.put("/api/v1/thresholds/", change, format="json").status_code == 200
        row = row_of(bank_client)
        assert (row["days_of_supply"], row["low_days"], row["critical_days"], row["level"]) == (2.0, 3.0, 1.5, "LOW")
        change[0] |= {"critical_days": 2}
        bank_client.put("/api/v1/thresholds/", change, format="json")
        assert row_of(bank_client)["level"] == "CRITICAL"  # at the threshold: as for units
        # Left out: kept; null: cleared.
        without = [{k: v for k, v in change[0].items() if not k.endswith("_days")}]
        bank_client.put("/api/v1/thresholds/", without, format="json")
        assert row_of(bank_client)["critical_days"] == 2.0
        bank_client.put("/api/v1/thresholds/", [change[0] | {"low_days": None, "critical_days": None}], format="json")
        assert (row_of(bank_client)["low_days"], row_of(bank_client)["level"]) == (None, "OK")

    @pytest.mark.parametrize(
        ("days", "field"),
        [
            ({"low_days": 1, "critical_days": 2}, "critical_days"),
            ({"low_days": -1}, "low_days"),
            ({"low_days": "lots"}, "low_days"),
            ({"critical_days": 100000}, "critical_days"),
        ],
    )
    def test_bad_thresholds_in_days_are_refused(self, bank_client, days, field):
        item = {"component": "RED_CELLS", "blood_group": "A+", "low_threshold": 15, "critical_threshold": 6} | days
        response = bank_client.put("/api/v1/thresholds/", [item], format="json")
        assert response.status_code == 400 and field in str(response.json())

    def test_critical_days_above_the_kept_low_days_is_refused(self, bank_client):
        item = {"component": "RED_CELLS", "blood_group": "A+", "low_threshold": 15, "critical_threshold": 6}
        bank_client.put("/api/v1/thresholds/", [item | {"low_days": 2, "critical_days": 1}], format="json")
        response = bank_client.put("/api/v1/thresholds/", [item | {"critical_days": 3}], format="json")
        assert response.status_code == 400 and "critical_days" in response.json()

    def test_stock_rows_count_available_units_per_special_attribute(self, bank_client, unit_factory):
        unit_factory.create_batch(2, blood_group="A+", special_attributes=["IRRADIATED", "CMV_NEGATIVE"])
        unit_factory(blood_group="A+", special_attributes=["CMV_NEGATIVE"])
        unit_factory(blood_group="A+", special_attributes=["CMV_NEGATIVE"], status=UnitStatus.ALLOCATED)
        unit_factory(blood_group="A+", special_attributes=["WASHED"], expires_at=datetime.now(UTC) - timedelta(hours=1))
        unit_factory(component="PLASMA", blood_group="A+", special_attributes=["HT_NEGATIVE"])
        assert row_of(bank_client)["by_attribute"] == {
            "IRRADIATED": 2,
            "CMV_NEGATIVE": 3,
            "LEUKOREDUCED": 0,
            "WASHED": 0,
            "HBS_NEGATIVE": 0,
            "HT_NEGATIVE": 0,
        }
        assert row_of(bank_client, ("PLASMA", "A+"))["by_attribute"]["HT_NEGATIVE"] == 1


@pytest.mark.django_db
class TestStockEvents:
    def set_days(self, low: str, critical: str) -> None:
        services.update_thresholds(
            items=[
                {
                    "component": "RED_CELLS",
                    "blood_group": "A+",
                    "low_threshold": 15,
                    "critical_threshold": 6,
                    "low_days": Decimal(low),
                    "critical_days": Decimal(critical),
                }
            ],
            by="admin",
        )

    def test_inventory_updated_carries_days_of_supply_and_low_stock_the_thresholds_in_days(self, unit_factory):
        unit_factory.create_batch(20, blood_group="A+")
        dispatched(unit_factory, 140)  # 5 a day: 4.0 days
        services.refresh_stock(keys=[KEY], recount=True)
        assert [(e.available_units, e.days_of_supply, e.level) for e in events(topics.INVENTORY_UPDATED)] == [
            (20, 4.0, "OK")
        ]
        self.set_days("5", "2")  # 4.0 days <= 5: LOW, though 20 units are above 15
        (low,) = events(topics.LOW_STOCK)
        assert (low.level, low.available_units, low.days_of_supply, low.low_days, low.critical_days) == (
            "LOW",
            20,
            4.0,
            5.0,
            2.0,
        )

    def test_the_decision_path_and_the_full_refresh_agree_on_days_and_levels(self, unit_factory):
        """Receiving a unit takes the one-key SQL path; the sweep the general one. Levels match either way."""
        unit_factory.create_batch(9, blood_group="A+")
        dispatched(unit_factory, 56)  # 2 a day
        self.set_days("5", "4.5")  # 9 units: 4.5 days: CRITICAL by days; 9 units: LOW by units
        assert [e.level for e in events(topics.LOW_STOCK)] == ["CRITICAL"]
        for sequence in range(1, 4):  # 10 units: 5.0 days (LOW), 11: 5.5 (LOW by units), 12: 6.0
            services.receive_unit(
                din=make_din("T0003", 26, sequence),
                component="RED_CELLS",
                blood_group="A+",
                volume_ml=280,
                collected_at=datetime.now(UTC) - timedelta(days=1),
                batch="B",
                by="clerk",
            )
            snap = StockSnapshot.objects.get(component="RED_CELLS", blood_group="A+")
            last = events(topics.INVENTORY_UPDATED)[-1]
            assert (
                snap.level
                == last.level
                == rules.stock_level(
                    last.available_units,
                    low=15,
                    critical=6,
                    days=snap.days_of_supply,
                    low_days=Decimal(5),
                    critical_days=Decimal("4.5"),
                )
            )
            assert float(snap.days_of_supply) == last.days_of_supply
        assert [(e.available_units, e.days_of_supply) for e in events(topics.INVENTORY_UPDATED)][-3:] == [
            (10, 5.0),
            (11, 5.5),
            (12, 6.0),
        ]
        assert [e.level for e in events(topics.LOW_STOCK)] == ["CRITICAL", "LOW"]
        services.expire_units()  # the full recount finds the same: nothing new to publish
        assert len(events(topics.INVENTORY_UPDATED)) == 4  # the thresholds' first publication and 3 receipts

    def test_the_sweep_publishes_a_change_of_demand(self, unit_factory):
        unit_factory.create_batch(20, blood_group="A+")
        self.set_days("3", "1")
        services.refresh_stock(keys=[KEY], recount=True)
        assert events(topics.LOW_STOCK) == []
        dispatched(unit_factory, 280)  # a busy week: 10 a day, 2.0 days left
        services.expire_units()
        assert (events(topics.INVENTORY_UPDATED)[-1].days_of_supply, events(topics.LOW_STOCK)[-1].level) == (2.0, "LOW")
        # Those dispatches leave the window four weeks later: demand falls, the level recovers.
        services.expire_units(now=datetime.now(UTC) + timedelta(days=28))
        assert events(topics.LOW_STOCK)[-1].level == "RECOVERED"
        assert events(topics.INVENTORY_UPDATED)[-1].days_of_supply is None

    def test_counting_dispatches_uses_the_partial_index(self, unit_factory):
        dispatched(unit_factory, 3)
        with connection.cursor() as cursor:
            cursor.execute("SET enable_seqscan = off")
            queryset = UnitStatusChange.objects.filter(
                to_status="ISSUED", at__gt=datetime.now(UTC) - rules.DISPATCH_WINDOW
            ).exclude(from_status="ISSUED")
            plan = queryset.explain()
            cursor.execute("SET enable_seqscan = on")
        assert "history_dispatch_idx" in plan
        assert selectors.dispatched_counts(now=datetime.now(UTC)) == {KEY: 3}


@pytest.mark.django_db(transaction=True)
def test_concurrent_receipts_and_quarantines_publish_exact_counts_days_and_levels(unit_factory):
    """Four threads change one key at once: every published count, days of supply and level is exact
    for its place in commit order, and each crossing follows from the level published before it."""
    services.ensure_products()  # a transactional test starts from an empty database
    stocked = unit_factory.create_batch(12, blood_group="A+")
    dispatched(unit_factory, 84)  # 3 a day
    services.update_thresholds(
        items=[
            {
                "component": "RED_CELLS",
                "blood_group": "A+",
                "low_threshold": 8,
                "critical_threshold": 3,
                "low_days": Decimal(4),
                "critical_days": Decimal(2),
            }
        ],
        by="admin",
    )
    OutboxEvent.objects.all().delete()
    start = threading.Barrier(4)
    collected = datetime.now(UTC) - timedelta(days=1)

    def receiver(offset: int) -> None:
        start.wait()
        try:
            for n in range(5):
                services.receive_unit(
                    din=make_din("T0004", 26, offset * 100 + n),
                    component="RED_CELLS",
                    blood_group="A+",
                    volume_ml=280,
                    collected_at=collected,
                    batch="B",
                    by="clerk",
                )
        finally:
            connection.close()

    def quarantiner(units) -> None:
        start.wait()
        try:
            for unit in units:
                services.change_status(unit_ids=[unit.pk], to=UnitStatus.QUARANTINED, reason="check", by="a")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(receiver, 1), pool.submit(receiver, 2)]
        futures += [pool.submit(quarantiner, stocked[:5]), pool.submit(quarantiner, stocked[5:10])]
        for future in futures:
            future.result()

    updated = events(topics.INVENTORY_UPDATED)
    assert len(updated) == 20  # every change changed the count: one event each
    counts = [e.available_units for e in updated]
    assert all(abs(b - a) == 1 for a, b in zip([12, *counts], counts, strict=False)), counts
    assert counts[-1] == 12 + 10 - 10
    previous = rules.stock_level(  # as published before the threads began: 12 units, 4.0 days
        12, low=8, critical=3, days=Decimal(4), low_days=Decimal(4), critical_days=Decimal(2)
    )
    crossings = []
    for event in updated:
        days = rules.days_of_supply(event.available_units, 84)
        assert event.days_of_supply == float(days)
        level = rules.stock_level(
            event.available_units, low=8, critical=3, days=days, low_days=Decimal(4), critical_days=Decimal(2)
        )
        assert event.level == level
        if rules.crossing(previous, level) is not None:
            crossings.append(rules.crossing(previous, level).value)
        previous = level
    assert [e.level for e in events(topics.LOW_STOCK)] == crossings
