"""Dispatch, fates, returns, overdue fates and recalls at the bank, on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from allocation.models import Allocation
from allocation.services import cancel_blood_request
from inventory.din import make_din
from inventory.models import Unit, UnitStatus
from inventory.services import TransitionError, change_status, receive_unit

from shared_events import topics
from shared_events.schemas import BloodCancelledV1, RecallAcknowledgedV1, UnitFateV1, UnitsReceivedV1
from traceability import services
from traceability.models import Recall, RecallUnit, UnitFate
from traceability.selectors import unit_trace
from traceability.tests.support import approved_request, entry, fate_payload, published, units_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def stock():
    """Four O+ red-cell units received through the service (so their history starts at the bank)."""
    return [
        receive_unit(
            din=make_din("T0002", 26, sequence),
            component="RED_CELLS",
            blood_group="O+",
            volume_ml=280,
            collected_at=datetime.now(UTC) - timedelta(days=3),
            batch="B-1",
            by="bank_clerk",
        )
        for sequence in range(1, 5)
    ]


def _fate(bank_request, unit, fate, **fields):
    data = UnitFateV1.model_validate(fate_payload(bank_request, unit, fate, **fields))
    return services.record_fate(data=data, event_id=uuid.uuid4())


def test_dispatch_issues_the_allocated_units_and_publishes_them(stock):
    bank_request = approved_request(units=2)

    dispatch = services.dispatch_request(request_id=bank_request.request_id, by="bank_clerk", courier="bike 3")

    assert {u.status for u in units_of(bank_request)} == {UnitStatus.ISSUED}
    assert dispatch.units.count() == 2
    [event] = published(topics.UNITS_DISPATCHED)
    assert event["request_id"] == str(bank_request.request_id)
    assert sorted(u["din"] for u in event["units"]) == [u.din for u in units_of(bank_request)]
    assert "courier" not in event and "note" not in event  # free text stays at the bank


def test_a_second_dispatch_finds_nothing_to_send(stock):
    bank_request = approved_request(units=1)
    services.dispatch_request(request_id=bank_request.request_id, by="bank_clerk")
    with pytest.raises(services.NothingToDispatch):
        services.dispatch_request(request_id=bank_request.request_id, by="bank_clerk")
    assert len(published(topics.UNITS_DISPATCHED)) == 1


def test_an_allocated_unit_expired_before_dispatch_is_released_not_sent(stock):
    bank_request = approved_request(units=2)
    first, second = units_of(bank_request)
    Unit.objects.filter(pk=first.pk).update(expires_at=datetime.now(UTC) - timedelta(minutes=1))

    dispatch = services.dispatch_request(request_id=bank_request.request_id, by="bank_clerk")

    assert list(dispatch.units.all()) == [second]
    first.refresh_from_db()
    assert first.status == UnitStatus.EXPIRED
    assert published(topics.RELEASED)[-1] == published(topics.RELEASED)[-1] | {
        "unit_ids": [str(first.pk)],
        "reason": "EXPIRED",
    }


def test_a_cancel_after_dispatch_never_puts_issued_units_back_on_the_shelf(stock):
    bank_request = approved_request(units=2)
    services.dispatch_request(request_id=bank_request.request_id, by="bank_clerk")
    cancel = BloodCancelledV1(
        request_id=bank_request.request_id,
        hospital_id=bank_request.hospital_id,
        reason="patient died",
        cancelled_by="stmary_staff",
        cancelled_at=datetime.now(UTC),
    )

    cancel_blood_request(cancel=cancel)

    assert {u.status for u in units_of(bank_request)} == {UnitStatus.ISSUED}
    assert not Allocation.objects.filter(request=bank_request, released_at__isnull=False).exists()
    assert published(topics.RELEASED) == []  # nothing was still allocated: nothing released


def test_receipt_and_fates_complete_the_trace_in_either_order(stock):
    bank_request = approved_request(units=2)
    services.dispatch_request(request_id=bank_request.request_id, by="bank_clerk")
    transfused, wasted = units_of(bank_request)
    received_at = datetime.now(UTC)
    started_at = received_at + timedelta(minutes=5)

    # The fate (keyed by DIN) overtakes the receipt (keyed by request id): both are kept, in time order.
    _fate(bank_request, transfused, "TRANSFUSED", adverse_reaction=True, started_at=started_at.isoformat())
    services.record_receipt(
        data=UnitsReceivedV1(
            request_id=bank_request.request_id,
            hospital_id=bank_request.hospital_id,
            dins=[transfused.din, wasted.din],
            received_by="stmary_staff",
            received_at=received_at,
        )
    )
    _fate(bank_request, wasted, "WASTED", reason="TEMPERATURE_EXCURSION")

    trace = unit_trace(din=transfused.din)
    [unit] = trace["units"]
    assert unit["status"] == UnitStatus.TRANSFUSED
    steps = [event["step"] for event in unit["events"]]
    assert steps == ["RECEIVED_AT_BANK", "ALLOCATED", "DISPATCHED", "RECEIVED_BY_HOSPITAL", "TRANSFUSED"]
    transfusion = unit["events"][-1]
    assert transfusion["by"] == "stmary_staff"
    assert transfusion["hospital_id"] == bank_request.hospital_id
    assert transfusion["detail"]["patient_reference"] == "MRN-4411"
    assert transfusion["detail"]["adverse_reaction"] is True
    assert unit["events"][1]["by"] == "system"
    wasted.refresh_from_db()
    assert wasted.status == UnitStatus.WASTED
    assert unit_trace(din=wasted.din)["units"][0]["events"][-1]["detail"]["reason"] == "TEMPERATURE_EXCURSION"


def test_a_fate_is_recorded_once_and_a_different_one_is_refused(stock):
    bank_request = approved_request(units=1)
    services.dispatch_request(request_id=bank_request.request_id, by="bank_clerk")
    [unit] = units_of(bank_request)

    first = _fate(bank_request, unit, "TRANSFUSED")
    assert _fate(bank_request, unit, "TRANSFUSED") == first  # a repeat changes nothing
    with pytest.raises(services.RefusedEvent):
        _fate(bank_request, unit, "WASTED")
    assert UnitFate.objects.count() == 1


def test_a_fate_for_a_unit_not_issued_to_that_hospital_is_refused(stock):
    bank_request = approved_request(units=1)
    [unit] = units_of(bank_request)
    with pytest.raises(services.RefusedEvent):
        _fate(bank_request, unit, "TRANSFUSED")  # allocated, not dispatched
    services.dispatch_request(request_id=bank_request.request_id, by="bank_clerk")
    with pytest.raises(services.RefusedEvent):
        _fate(bank_request, unit, "TRANSFUSED", hospital_id="00000000-0000-4000-8000-000000000001")


@pytest.mark.parametrize(
    ("component", "minutes_out", "intact", "decision", "reason"),
    [
        ("RED_CELLS", 25, True, "QUARANTINED", ""),
        ("RED_CELLS", 45, True, "WASTED", "NOT_REQUIRED_OUT_TOO_LONG"),
        ("RED_CELLS", 10, False, "WASTED", "TEMPERATURE_EXCURSION"),
        ("PLATELETS", 300, True, "QUARANTINED", ""),
        ("PLASMA", 5, False, "WASTED", "TEMPERATURE_EXCURSION"),
    ],
)
def test_the_bank_decides_a_return(unit_factory, component, minutes_out, intact, decision, reason):
    unit_factory.create_batch(2, component=component, blood_group="AB+")
    bank_request = approved_request(units=1, component=component, group="AB+")
    services.dispatch_request(request_id=bank_request.request_id, by="bank_clerk")
    [unit] = units_of(bank_request)
    now = datetime.now(UTC)

    fate = _fate(
        bank_request,
        unit,
        "RETURNED",
        left_storage_at=(now - timedelta(minutes=minutes_out)).isoformat(),
        returned_at=now.isoformat(),
        cold_chain_intact=intact,
    )

    unit.refresh_from_db()
    assert (unit.status, fate.bank_waste_reason) == (decision, reason)
    assert Allocation.objects.get(unit=unit).released_at is not None  # free to be issued again
    steps = [e["step"] for e in unit_trace(din=unit.din)["units"][0]["events"]]
    assert steps[-2:] == ["RETURNED", decision]
    if decision == "QUARANTINED":
        change_status(unit_ids=[unit.pk], to=UnitStatus.AVAILABLE, reason="bag inspected", by="bank_clerk")
        assert unit_trace(din=unit.din)["units"][0]["events"][-1]["step"] == "RESTOCKED"


def test_overdue_fates_are_listed_and_announced_once_a_day(stock, settings):
    bank_request = approved_request(units=2)
    services.dispatch_request(
        request_id=bank_request.request_id, by="bank_clerk", now=datetime.now(UTC) - timedelta(hours=80)
    )
    first, second = units_of(bank_request)
    _fate(bank_request, first, "TRANSFUSED")

    assert list(services.overdue_units()) == [second]
    assert services.announce_overdue_fates() == 1
    assert services.announce_overdue_fates() == 0  # told today already
    [event] = published(topics.FATE_OVERDUE)
    assert event["hospital_id"] == str(bank_request.hospital_id)
    assert [u["din"] for u in event["units"]] == [second.din]
    assert event["overdue_after_hours"] == settings.FATE_OVERDUE_HOURS
    assert services.announce_overdue_fates(now=datetime.now(UTC) + timedelta(hours=25)) == 1


def test_a_recall_quarantines_stock_releases_allocations_and_lists_issued_units(unit_factory):
    issued_unit, allocated_unit, _in_stock = unit_factory.create_batch(3, blood_group="A+")
    plasma = unit_factory(din=issued_unit.din, component="PLASMA", blood_group="A+")  # same donation
    issued_request = approved_request(units=1, group="A+")
    services.dispatch_request(request_id=issued_request.request_id, by="bank_clerk")
    allocated_request = approved_request(units=1, group="A+")
    [issued_unit] = units_of(issued_request)
    [allocated_unit] = units_of(allocated_request)
    Unit.objects.filter(pk=plasma.pk).update(din=allocated_unit.din)  # two components of another donation

    recall = services.issue_recall(
        dins=[issued_unit.din, allocated_unit.din], reason="DONOR_INFECTION", severity="HIGH", by="bank_clerk"
    )

    statuses = dict(Unit.objects.filter(recalled_at__isnull=False).values_list("pk", "status"))
    assert statuses == {issued_unit.pk: "ISSUED", allocated_unit.pk: "QUARANTINED", plasma.pk: "QUARANTINED"}
    released = published(topics.RELEASED)[-1]
    assert released["reason"] == "RECALLED" and released["unit_ids"] == [str(allocated_unit.pk)]
    [issued_event] = published(topics.RECALL_ISSUED)
    assert issued_event["hospitals"] == [
        {
            "hospital_id": str(issued_request.hospital_id),
            "units": [
                entry(issued_unit)
                | {
                    "expires_at": issued_event["hospitals"][0]["units"][0]["expires_at"],
                    "product_code": issued_unit.product_code,
                    "division": "00",
                    "special_attributes": [],
                    "request_id": str(issued_request.request_id),
                    "bank_status": "ISSUED",
                }
            ],
        }
    ]
    with pytest.raises(TransitionError):
        change_status(unit_ids=[plasma.pk], to=UnitStatus.AVAILABLE, reason="try", by="bank_clerk")
    with pytest.raises(services.RecallNotAccounted):
        services.close_recall(recall_id=recall.pk, by="bank_clerk")

    services.record_recall_answer(
        data=RecallAcknowledgedV1(
            recall_id=recall.pk,
            hospital_id=issued_request.hospital_id,
            units=[
                {
                    "unit_id": issued_unit.pk,
                    "din": issued_unit.din,
                    "state": "TRANSFUSED",
                    "patient_reference": "MRN-9",
                    "started_at": datetime.now(UTC),
                }
            ],
            acknowledged_by="stmary_staff",
            acknowledged_at=datetime.now(UTC),
        )
    )
    answer = RecallUnit.objects.get(recall=recall, unit=issued_unit)
    assert (answer.outcome, answer.patient_reference) == ("TRANSFUSED", "MRN-9")
    assert services.close_recall(recall_id=recall.pk, by="bank_clerk").status == "CLOSED"
    assert Recall.objects.get().closed_by == "bank_clerk"


def test_a_recall_of_unknown_dins_changes_nothing(stock):
    with pytest.raises(services.UnknownDins) as refused:
        services.issue_recall(dins=[stock[0].din, "A999926999999"], reason="OTHER", severity="LOW", by="bank_clerk")
    assert refused.value.dins == ["A999926999999"]
    assert not Recall.objects.exists()
    assert not Unit.objects.filter(recalled_at__isnull=False).exists()
