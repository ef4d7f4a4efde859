"""Inventory writes: receiving, status changes with history, the expiry sweep, thresholds, stock events."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from inventory import services
from inventory.models import StockSnapshot, StockThreshold, Unit, UnitStatus
from inventory.receipt import ReceiptError
from shared_events import topics
from shared_events.demo import demo_password
from shared_events.django.models import OutboxEvent
from shared_events.envelope import parse_event
from shared_events.testing import wait_for

pytestmark = pytest.mark.django_db


def events(event_type: str) -> list:
    return [parse_event(bytes(row.value)) for row in OutboxEvent.objects.filter(event_type=event_type).order_by("id")]


def receive(din: str = "A999926123456", **overrides) -> Unit:
    fields = {
        "din": din,
        "component": "RED_CELLS",
        "blood_group": "O-",
        "volume_ml": 280,
        "collected_at": datetime.now(UTC) - timedelta(days=1),
        "batch": "B-1",
        "by": "bank_clerk",
    } | overrides
    return services.receive_unit(**fields)


def test_a_received_unit_is_available_gets_its_default_shelf_life_and_a_history_entry():
    unit = receive(component="PLATELETS")
    assert unit.status == UnitStatus.AVAILABLE
    assert unit.expires_at - unit.collected_at == timedelta(days=5)
    (entry,) = unit.history.all()
    assert (entry.to_status, entry.by, entry.reason) == ("AVAILABLE", "bank_clerk", "received")


def test_the_check_character_is_validated_and_stripped():
    from inventory.din import check_character

    unit = receive(din="A999926123456" + check_character("A999926123456"))
    assert unit.din == "A999926123456"
    with pytest.raises(ReceiptError) as refused:
        receive(din="A999926123457" + check_character("A999926123456"))
    assert "check character" in refused.value.errors["din"][0]


def test_the_same_din_product_code_and_division_cannot_be_in_stock_twice():
    receive()
    receive(component="PLASMA")  # the same donation, another component: fine
    receive(product_code="E0398VA0")  # a split of the red cells: fine
    with pytest.raises(ReceiptError) as refused:
        receive()
    assert "already recorded" in refused.value.errors["din"][0]
    # The database refuses it too, whatever path a unit takes.
    unit = Unit.objects.get(din="A999926123456", product_code="E0398V00")
    with pytest.raises(IntegrityError), transaction.atomic():
        Unit.objects.create(**{f.attname: getattr(unit, f.attname) for f in Unit._meta.concrete_fields} | {"id": None})


def test_a_unit_cannot_expire_before_it_was_collected():
    now = datetime.now(UTC)
    with pytest.raises(ReceiptError) as refused:
        receive(collected_at=now - timedelta(hours=2), expires_at=now - timedelta(hours=3))
    assert refused.value.errors["expires_at"] == ["must be after collected_at"]
    with pytest.raises(IntegrityError), transaction.atomic():
        Unit.objects.create(
            din="A999926123456",
            product_code="E0398V00",
            component="RED_CELLS",
            blood_group="O-",
            volume_ml=280,
            collected_at=now,
            expires_at=now - timedelta(hours=1),
            batch="B-1",
        )


def test_quarantine_release_and_discard_are_recorded_with_who_and_why(unit_factory):
    unit = unit_factory()
    services.change_status(unit_ids=[unit.pk], to=UnitStatus.QUARANTINED, reason="bag leak?", by="alice")
    services.change_status(unit_ids=[unit.pk], to=UnitStatus.AVAILABLE, reason="bag intact", by="bob")
    services.change_status(unit_ids=[unit.pk], to=UnitStatus.DISCARDED, reason="dropped", by="carol")
    trail = [(h.from_status, h.to_status, h.by, h.reason) for h in Unit.objects.get(pk=unit.pk).history.all()]
    assert trail == [
        ("AVAILABLE", "QUARANTINED", "alice", "bag leak?"),
        ("QUARANTINED", "AVAILABLE", "bob", "bag intact"),
        ("AVAILABLE", "DISCARDED", "carol", "dropped"),
    ]


def test_an_allocated_unit_cannot_be_quarantined_or_discarded(unit_factory):
    unit = unit_factory(status=UnitStatus.ALLOCATED)
    for target in (UnitStatus.QUARANTINED, UnitStatus.DISCARDED):
        with pytest.raises(services.TransitionError):
            services.change_status(unit_ids=[unit.pk], to=target, reason="x", by="alice")
    unit.refresh_from_db()
    assert unit.status == UnitStatus.ALLOCATED


def test_a_bulk_change_is_all_or_nothing(unit_factory):
    ok, allocated = unit_factory(), unit_factory(status=UnitStatus.ALLOCATED)
    with pytest.raises(services.TransitionError):
        services.change_status(unit_ids=[ok.pk, allocated.pk], to=UnitStatus.QUARANTINED, reason="recall", by="a")
    ok.refresh_from_db()
    assert ok.status == UnitStatus.AVAILABLE


def test_a_unit_released_after_its_expiry_becomes_expired(unit_factory):
    now = datetime.now(UTC)
    unit = unit_factory(status=UnitStatus.QUARANTINED, expires_at=now - timedelta(minutes=5))
    services.change_status(unit_ids=[unit.pk], to=UnitStatus.AVAILABLE, reason="cleared", by="a")
    unit.refresh_from_db()
    assert unit.status == UnitStatus.EXPIRED


def test_the_expiry_sweep_expires_only_available_units_past_expiry_and_publishes_the_change(unit_factory):
    now = datetime.now(UTC)
    services.ensure_stock_keys()
    services.refresh_stock(keys=services.ALL_KEYS, recount=True)
    fresh = unit_factory.create_batch(3, blood_group="B-", expires_at=now + timedelta(days=3))
    old = unit_factory.create_batch(2, blood_group="B-", expires_at=now - timedelta(minutes=1))
    quarantined = unit_factory(blood_group="B-", status=UnitStatus.QUARANTINED, expires_at=now - timedelta(hours=1))
    services.refresh_stock(keys=[("RED_CELLS", "B-")], recount=True)
    OutboxEvent.objects.all().delete()
    assert services.expire_units() == 2
    assert {u.status for u in Unit.objects.filter(pk__in=[u.pk for u in old])} == {"EXPIRED"}
    assert {u.status for u in Unit.objects.filter(pk__in=[u.pk for u in fresh])} == {"AVAILABLE"}
    assert Unit.objects.get(pk=quarantined.pk).status == "QUARANTINED"
    assert Unit.objects.filter(pk=old[0].pk).first().history.last().by == services.SYSTEM_EXPIRY
    # The expired units were already not counted as available; the sweep publishes nothing new.
    assert events(topics.INVENTORY_UPDATED) == []
    assert services.expire_units() == 0


def test_units_passing_their_expiry_leave_the_published_count_when_the_sweep_runs(unit_factory):
    now = datetime.now(UTC)
    unit_factory.create_batch(3, blood_group="AB-", expires_at=now + timedelta(days=3))
    soon = unit_factory(blood_group="AB-", expires_at=now + timedelta(hours=1))
    services.refresh_stock(keys=[("RED_CELLS", "AB-")], recount=True)
    (first,) = events(topics.INVENTORY_UPDATED)
    assert (first.data.available_units, first.data.expiring_within_72h) == (4, 4)
    assert services.expire_units(now=soon.expires_at + timedelta(seconds=1)) == 1
    published = [e.data.available_units for e in events(topics.INVENTORY_UPDATED) if e.subject == "RED_CELLS:AB-"]
    assert published == [4, 3]


def test_stock_events_follow_threshold_crossings_down_and_back_up(unit_factory):
    # RED_CELLS B+: low 5, critical 2.
    units = unit_factory.create_batch(6, blood_group="B+")
    services.refresh_stock(keys=[("RED_CELLS", "B+")], recount=True)
    assert events(topics.LOW_STOCK) == []
    for unit in units[:4]:  # 6 -> 5 (LOW) -> 4 -> 3 -> 2 (CRITICAL)
        services.change_status(unit_ids=[unit.pk], to=UnitStatus.QUARANTINED, reason="check", by="a")
    assert [(e.data.level, e.data.available_units) for e in events(topics.LOW_STOCK)] == [("LOW", 5), ("CRITICAL", 2)]
    services.change_status(unit_ids=[u.pk for u in units[:4]], to=UnitStatus.AVAILABLE, reason="ok", by="a")
    assert [e.data.level for e in events(topics.LOW_STOCK)] == ["LOW", "CRITICAL", "RECOVERED"]
    assert [e.data.available_units for e in events(topics.INVENTORY_UPDATED)] == [6, 5, 4, 3, 2, 6]
    assert {e.subject for e in events(topics.INVENTORY_UPDATED)} == {"RED_CELLS:B+"}


def test_raising_a_threshold_above_the_stock_announces_the_crossing(unit_factory):
    unit_factory.create_batch(6, blood_group="A-")
    services.refresh_stock(keys=[("RED_CELLS", "A-")], recount=True)
    services.update_thresholds(
        items=[{"component": "RED_CELLS", "blood_group": "A-", "low_threshold": 8, "critical_threshold": 3}], by="a"
    )
    (low,) = events(topics.LOW_STOCK)
    assert (low.data.level, low.data.low_threshold) == ("LOW", 8)


def test_the_maintained_count_heals_on_the_sweep_recount(unit_factory):
    unit_factory.create_batch(4, blood_group="O-")
    services.refresh_stock(keys=[("RED_CELLS", "O-")], recount=True)
    StockSnapshot.objects.filter(component="RED_CELLS", blood_group="O-").update(status_available=99)
    services.expire_units()
    snap = StockSnapshot.objects.get(component="RED_CELLS", blood_group="O-")
    assert (snap.status_available, snap.available_units) == (4, 4)


def test_the_sweep_over_a_steady_stock_writes_no_snapshot_and_names_no_key(unit_factory):
    # Every minute, in the bank worker's consumer loop: its statements are what the consumer waits for.
    unit_factory.create_batch(3, blood_group="A+")
    services.ensure_stock_keys()
    services.expire_units()
    StockSnapshot.objects.filter(component="RED_CELLS", blood_group="O+").update(status_available=7)  # drifted
    with CaptureQueriesContext(connection) as queries:
        services.expire_units()
    writes = [query["sql"] for query in queries if query["sql"].startswith("UPDATE")]
    assert len(writes) == 1 and '"status_available" = 0' in writes[0], writes  # only the drifted key, healed
    counted = [query["sql"] for query in queries if "COUNT(" in query["sql"]]
    assert counted and not any("OR" in sql for sql in counted), counted  # every key: no 40-way OR
    with CaptureQueriesContext(connection) as queries:
        services.expire_units()
    assert not [query["sql"] for query in queries if query["sql"].startswith("UPDATE")]
    assert StockSnapshot.objects.get(component="RED_CELLS", blood_group="A+").status_available == 3


def test_seed_demo_is_idempotent_and_stocks_every_component_and_group():
    call_command("seed_demo")
    units, events_after_first = Unit.objects.count(), OutboxEvent.objects.count()
    call_command("seed_demo")
    assert Unit.objects.count() == units and 300 <= units <= 400
    assert OutboxEvent.objects.count() == events_after_first
    assert StockThreshold.objects.count() == 40
    assert StockThreshold.objects.get(component="RED_CELLS", blood_group="O-").low_threshold == 10
    now = datetime.now(UTC)
    usable = Unit.objects.filter(status="AVAILABLE", expires_at__gt=now)
    assert usable.filter(component="RED_CELLS", blood_group="O+").count() >= 10
    assert Unit.objects.filter(status="EXPIRED").exists()
    assert usable.filter(expires_at__lte=now + timedelta(hours=72)).exists()
    assert {(u.component, u.blood_group) for u in Unit.objects.all()} == set(services.ALL_KEYS)
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.get(username="bank_admin")
    assert admin.is_staff and admin.is_superuser and admin.groups.filter(name="bank_staff").exists()
    assert admin.check_password(demo_password())


@pytest.mark.django_db(transaction=True)
def test_two_transactions_creating_stock_keys_in_opposite_orders_both_commit():
    """On a fresh database the first stock change of a key creates its threshold and snapshot rows.

    One transaction touches O+ and then A+, another A+ and then O+: creating only the key needed
    at each call, each waited for the other's uncommitted new key (a deadlock).
    """
    assert not StockThreshold.objects.exists()
    first_done, errors = threading.Event(), []

    def second() -> None:
        try:
            with transaction.atomic():
                first_done.wait(timeout=30)
                services.refresh_stock(keys=[("RED_CELLS", "A+")])
                services.refresh_stock(keys=[("RED_CELLS", "O+")])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    with transaction.atomic():
        services.refresh_stock(keys=[("RED_CELLS", "O+")])
        thread = threading.Thread(target=second)
        thread.start()
        first_done.set()
        wait_for(
            lambda: _waiting_for_a_lock() or not thread.is_alive(),
            timeout=30,
            message="the second transaction blocked or done",
        )
        services.refresh_stock(keys=[("RED_CELLS", "A+")])
    thread.join(timeout=30)
    assert not thread.is_alive() and errors == []
    assert StockSnapshot.objects.filter(component="RED_CELLS", blood_group__in=["O+", "A+"]).count() == 2


def _waiting_for_a_lock() -> bool:
    """Whether another session of this database waits for a lock (read from this test's own connection)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # else the view stays as this transaction first saw it
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
        )
        (waiting,) = cursor.fetchone()
    return waiting > 0
