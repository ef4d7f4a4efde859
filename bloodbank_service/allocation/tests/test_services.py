"""The bank's decisions on PostgreSQL: policy, atomic allocation, decision and stock events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from inventory.models import StockSnapshot, Unit, UnitStatus, UnitStatusChange
from inventory.services import publish_coalesced_stock, stock_event_interval

from allocation import services
from allocation.models import Allocation, BankRequest, RequestStatus
from allocation.services import decide_waiting_requests, receive_blood_request
from shared_events import topics
from shared_events.django.models import OutboxEvent
from shared_events.envelope import parse_event
from shared_events.schemas import BloodRequestedV2
from shared_events.testing import requested_payload

pytestmark = pytest.mark.django_db


def request(**overrides) -> BloodRequestedV2:
    return BloodRequestedV2.model_validate(requested_payload(**overrides))


def decide_now(**overrides) -> BankRequest:
    """Receive a request and, if it waits (SCHEDULED), run the deferred step."""
    with transaction.atomic():
        bank_request = receive_blood_request(request=request(**overrides))
    if bank_request.status == RequestStatus.WAITING:
        decide_waiting_requests()
        bank_request.refresh_from_db()
    return bank_request


def events(event_type: str) -> list:
    return [parse_event(bytes(row.value)) for row in OutboxEvent.objects.filter(event_type=event_type).order_by("id")]


def allocated_dins(bank_request: BankRequest) -> list[str]:
    return list(bank_request.allocations.order_by("id").values_list("unit__din", flat=True))


def test_an_emergency_request_with_enough_stock_is_approved_and_its_units_allocated(unit_factory):
    units = unit_factory.create_batch(3, blood_group="O+")
    decided = decide_now(units=2)
    assert decided.status == RequestStatus.APPROVED and decided.units_allocated == 2
    (approved,) = events(topics.APPROVED)
    assert approved.id == decided.decision_event_id
    assert approved.data.units_allocated == 2 and not approved.data.partial
    assert {str(a.unit_id) for a in approved.data.allocations} == {
        str(u.pk) for u in Unit.objects.filter(status=UnitStatus.ALLOCATED)
    }
    assert Unit.objects.filter(pk__in=[u.pk for u in units], status=UnitStatus.ALLOCATED).count() == 2
    assert bytes(BankRequest.objects.get(pk=decided.pk).decision_event) == bytes(
        OutboxEvent.objects.get(event_id=approved.id).value
    )


def test_units_are_taken_first_expired_first_out(unit_factory):
    now = datetime.now(UTC)
    late = unit_factory(expires_at=now + timedelta(days=20))
    early = unit_factory(expires_at=now + timedelta(days=2))
    middle = unit_factory(expires_at=now + timedelta(days=9))
    decided = decide_now(units=2)
    assert allocated_dins(decided) == [early.din, middle.din]
    late.refresh_from_db()
    assert late.status == UnitStatus.AVAILABLE


def test_the_identical_group_is_used_first_then_rhd_positive_substitutes_before_rhd_negative(unit_factory):
    unit_factory(blood_group="A+")
    unit_factory.create_batch(2, blood_group="O+")
    unit_factory.create_batch(4, blood_group="A-")
    unit_factory.create_batch(9, blood_group="O-")
    decided = decide_now(blood_group="A+", units=4, group_confirmed=True)
    groups = list(decided.allocations.order_by("id").values_list("unit__blood_group", flat=True))
    assert groups == ["A+", "O+", "O+", "A-"]  # O+ before the more plentiful A-: RhD-negative is scarce


def test_an_a_plus_patient_never_gets_b_plus_red_cells(unit_factory):
    unit_factory.create_batch(5, blood_group="B+")
    decided = decide_now(blood_group="A+", units=1, group_confirmed=True)
    assert decided.status == RequestStatus.REJECTED and decided.reason_code == "NO_COMPATIBLE_UNITS"
    assert not Unit.objects.filter(status=UnitStatus.ALLOCATED).exists()


def test_o_negative_red_cells_are_kept_from_scheduled_requests_of_other_groups(unit_factory):
    unit_factory.create_batch(5, blood_group="O-")
    decided = decide_now(blood_group="B+", units=1, priority="SCHEDULED", group_confirmed=True)
    assert decided.status == RequestStatus.REJECTED and decided.reason_code == "NO_COMPATIBLE_UNITS"


def test_o_negative_red_cells_go_to_an_emergency_last(unit_factory):
    unit_factory.create_batch(5, blood_group="O-")
    unit_factory(blood_group="B-")
    decided = decide_now(blood_group="B+", units=3, group_confirmed=True)
    groups = list(decided.allocations.order_by("id").values_list("unit__blood_group", flat=True))
    assert groups == ["B-", "O-", "O-"]


def test_a_scheduled_request_gets_no_unit_expiring_before_it_is_needed(unit_factory):
    now = datetime.now(UTC)
    unit_factory(expires_at=now + timedelta(days=1))
    keeper = unit_factory(expires_at=now + timedelta(days=10))
    decided = decide_now(
        units=1, priority="SCHEDULED", needed_by=(now + timedelta(days=3)).isoformat(), allow_partial=False
    )
    assert allocated_dins(decided) == [keeper.din]


def test_expired_units_are_never_allocated_even_before_the_sweep(unit_factory):
    now = datetime.now(UTC)
    unit_factory(collected_at=now - timedelta(days=43), expires_at=now - timedelta(minutes=1))
    decided = decide_now(units=1)
    assert decided.status == RequestStatus.REJECTED and decided.reason_code == "NO_COMPATIBLE_UNITS"


def test_short_stock_is_partly_approved_only_when_partial_is_allowed(unit_factory):
    unit_factory.create_batch(2)
    partial = decide_now(units=5, allow_partial=True)
    assert partial.status == RequestStatus.PARTIALLY_APPROVED and partial.units_allocated == 2
    assert events(topics.APPROVED)[0].data.partial is True
    unit_factory.create_batch(2)
    refused = decide_now(units=5, allow_partial=False)
    assert refused.status == RequestStatus.REJECTED and refused.reason_code == "INSUFFICIENT_STOCK"
    assert Unit.objects.filter(status=UnitStatus.AVAILABLE).count() == 2


def test_a_scheduled_request_whose_needed_by_passed_while_waiting_is_rejected(unit_factory):
    unit_factory.create_batch(2)
    needed_by = datetime.now(UTC) + timedelta(hours=1)
    with transaction.atomic():
        waiting = receive_blood_request(request=request(priority="SCHEDULED", needed_by=needed_by.isoformat()))
    assert waiting.status == RequestStatus.WAITING
    decide_waiting_requests(now=needed_by + timedelta(minutes=1))
    waiting.refresh_from_db()
    assert waiting.status == RequestStatus.REJECTED and waiting.reason_code == "NEEDED_BY_PASSED"


def test_a_scheduled_request_needed_before_it_was_made_is_invalid(unit_factory):
    unit_factory.create_batch(2)
    made = datetime.now(UTC)
    decided = decide_now(
        priority="SCHEDULED", requested_at=made.isoformat(), needed_by=(made - timedelta(hours=1)).isoformat()
    )
    assert decided.reason_code == "INVALID_REQUEST"
    assert events(topics.REJECTED)[0].data.reason_code == "INVALID_REQUEST"


def test_waiting_emergencies_are_decided_before_waiting_scheduled_requests(unit_factory):
    unit_factory.create_batch(2, blood_group="O+")
    now = datetime.now(UTC)
    scheduled = BankRequest.objects.create(
        request_id=uuid.uuid4(),
        hospital_id=uuid.uuid4(),
        blood_group="O+",
        component="RED_CELLS",
        units_requested=2,
        priority="SCHEDULED",
        needed_by=now + timedelta(days=1),
        allow_partial=False,
        received_at=now - timedelta(minutes=5),  # it has waited longer
    )
    emergency = BankRequest.objects.create(
        request_id=uuid.uuid4(),
        hospital_id=uuid.uuid4(),
        blood_group="O+",
        component="RED_CELLS",
        units_requested=2,
        priority="EMERGENCY",
        allow_partial=True,
        received_at=now,
    )
    assert decide_waiting_requests() == 2
    emergency.refresh_from_db()
    scheduled.refresh_from_db()
    assert emergency.status == RequestStatus.APPROVED
    assert scheduled.status == RequestStatus.REJECTED and scheduled.reason_code == "NO_COMPATIBLE_UNITS"


def test_every_decision_writes_a_live_allocation_per_unit_and_a_history_entry(unit_factory):
    unit_factory.create_batch(3)
    decided = decide_now(units=3)
    assert Allocation.objects.filter(request=decided, released_at__isnull=True).count() == 3
    for unit in Unit.objects.all():
        last = unit.history.last()
        assert (last.to_status, last.by, last.request_id) == ("ALLOCATED", "system:allocation", decided.request_id)


def _columns(row, skip: tuple[str, ...] = ("id",)) -> dict:
    values = {field.attname: getattr(row, field.attname) for field in type(row)._meta.concrete_fields}
    values = {name: bytes(v) if isinstance(v, memoryview) else v for name, v in values.items() if name not in skip}
    return values


@pytest.mark.parametrize("priority", ["EMERGENCY", "SCHEDULED"])  # the request row inserted, or updated
def test_the_one_statement_decision_writes_the_rows_the_orm_would(unit_factory, priority):
    unit_factory.create_batch(2, blood_group="A+")
    unit_factory.create_batch(3, blood_group="O+")
    payload = {"priority": priority, "blood_group": "A+", "units": 2, "group_confirmed": True}
    payload |= {"special_requirements": [], "hospital_name": "St Elsewhere", "patient_reference": "P-1"}
    with transaction.atomic():
        in_memory = receive_blood_request(request=request(**payload))
        if priority == "SCHEDULED":
            in_memory = BankRequest.objects.select_for_update().get(pk=in_memory.pk)
            services.decide(in_memory, now=datetime.now(UTC), created=True)
    stored = BankRequest.objects.get(pk=in_memory.pk)
    assert stored.status == RequestStatus.APPROVED
    assert _columns(stored, skip=()) == _columns(in_memory, skip=())
    (approved,) = events(topics.APPROVED)
    units = [Unit.objects.get(pk=entry.unit_id) for entry in approved.data.allocations]
    allocations, history = services._allocation_rows(stored, units, now=stored.decided_at)
    assert [_columns(row) for row in Allocation.objects.filter(request=stored).order_by("id")] == [
        _columns(row) for row in allocations
    ]
    written = UnitStatusChange.objects.filter(request_id=stored.request_id).order_by("id")
    assert [_columns(row) for row in written] == [_columns(row) for row in history]


def test_allocation_publishes_the_stock_change_and_a_low_stock_crossing(unit_factory):
    unit_factory.create_batch(22, blood_group="O+")  # O+ red cells: low 20, critical 8
    decide_now(units=1)
    first = events(topics.INVENTORY_UPDATED)
    assert [(e.subject, e.data.available_units, e.data.level) for e in first] == [("RED_CELLS:O+", 21, "OK")]
    assert events(topics.LOW_STOCK) == []
    decide_now(units=2)  # 21 -> 19: OK -> LOW
    (low,) = events(topics.LOW_STOCK)
    assert (low.data.level, low.data.available_units, low.data.low_threshold) == ("LOW", 19, 20)
    decide_now(units=1)  # 19 -> 18: still LOW, no crossing
    assert len(events(topics.LOW_STOCK)) == 1
    # The count alone changed moments after the key was published: the stock flush sends it.
    assert [e.data.available_units for e in events(topics.INVENTORY_UPDATED)] == [21, 19]
    assert publish_coalesced_stock(now=timezone.now() + stock_event_interval()) == 1
    assert [e.data.available_units for e in events(topics.INVENTORY_UPDATED)] == [21, 19, 18]


def test_count_changes_moments_after_a_publication_go_out_together_once_the_interval_has_passed(unit_factory):
    unit_factory.create_batch(30, blood_group="O+")  # O+ red cells: low 20, so every count here is OK
    decide_now(units=1)  # 29: the key's first event goes at once
    decide_now(units=1)  # 28
    decide_now(units=2)  # 26
    assert [e.data.available_units for e in events(topics.INVENTORY_UPDATED)] == [29]
    snapshot = StockSnapshot.objects.get(component="RED_CELLS", blood_group="O+")
    assert snapshot.available_units == 29 and snapshot.unpublished_since is not None  # the mark is in the database

    assert publish_coalesced_stock(now=snapshot.as_of + stock_event_interval() / 2) == 0  # not due yet
    assert publish_coalesced_stock(now=snapshot.as_of + stock_event_interval()) == 1

    assert [e.data.available_units for e in events(topics.INVENTORY_UPDATED)] == [29, 26]  # the latest count, once
    snapshot.refresh_from_db()
    assert (snapshot.available_units, snapshot.unpublished_since) == (26, None)
    assert publish_coalesced_stock(now=snapshot.as_of + 2 * stock_event_interval()) == 0  # nothing left to send


def test_a_count_change_long_enough_after_the_last_publication_goes_out_at_once(unit_factory):
    unit_factory.create_batch(30, blood_group="O+")
    decide_now(units=1)
    StockSnapshot.objects.update(as_of=F("as_of") - stock_event_interval())  # the interval has passed
    decide_now(units=1)
    assert [e.data.available_units for e in events(topics.INVENTORY_UPDATED)] == [29, 28]
    assert not StockSnapshot.objects.filter(unpublished_since__isnull=False).exists()


def test_with_no_interval_every_decision_publishes_its_stock_change(unit_factory, settings):
    settings.STOCK_EVENT_INTERVAL_SECONDS = 0
    unit_factory.create_batch(30, blood_group="O+")
    for _ in range(3):
        decide_now(units=1)
    assert [e.data.available_units for e in events(topics.INVENTORY_UPDATED)] == [29, 28, 27]
    assert not StockSnapshot.objects.filter(unpublished_since__isnull=False).exists()


@pytest.mark.django_db(transaction=True)
def test_a_waiting_request_whose_decision_fails_is_set_aside_and_does_not_hold_up_the_others(
    unit_factory, monkeypatch, caplog
):
    unit_factory.create_batch(4, blood_group="O+")
    monkeypatch.setattr(services, "_set_aside_until", {})
    with transaction.atomic():
        waiting = [
            receive_blood_request(request=request(priority="SCHEDULED", units=1, blood_group="O+")) for _ in range(3)
        ]
    poison = waiting[1].request_id  # in the middle of the line
    decide = services.decide

    def fails_on_the_poison(bank_request: BankRequest, **kwargs) -> BankRequest:
        if bank_request.request_id == poison:
            raise ValueError("a row this code cannot decide")
        return decide(bank_request, **kwargs)

    monkeypatch.setattr(services, "decide", fails_on_the_poison)
    assert decide_waiting_requests() == 2
    assert BankRequest.objects.get(pk=poison).status == RequestStatus.WAITING
    others = BankRequest.objects.exclude(pk=poison)
    assert set(others.values_list("status", flat=True)) == {RequestStatus.APPROVED}
    assert f"waiting request {poison} could not be decided" in caplog.text
    assert len(events(topics.APPROVED)) == 2  # the rolled-back first try published nothing

    caplog.clear()
    assert decide_waiting_requests() == 0  # set aside: not tried at every run
    assert "could not be decided" not in caplog.text

    monkeypatch.setattr(services, "decide", decide)  # fixed (a new release, the data mended)
    services._set_aside_until[poison] = 0.0  # and its time is up
    assert decide_waiting_requests() == 1
    assert BankRequest.objects.get(pk=poison).status == RequestStatus.APPROVED
