"""The bank's decisions arriving at the hospital: duplicates, out of order, unknown requests."""

import logging
import uuid

import pytest
from testing_support.factories import (
    approved_event,
    dispatched_event,
    make_request,
    receive_all,
    rejected_event,
    released_event,
)

from blood_requests import services
from blood_requests.handlers import HANDLERS
from blood_requests.models import BloodRequest
from shared_events import topics
from shared_events.envelope import build_event, parse_event

pytestmark = pytest.mark.django_db


def _handle(event) -> None:
    HANDLERS[event.type](event)


def _history(blood_request: BloodRequest) -> list[str]:
    return list(blood_request.history.values_list("status", flat=True))


def test_the_hospital_handles_every_event_it_consumes():
    assert set(HANDLERS) == {
        topics.UNITS_DISPATCHED,
        topics.RECALL_ISSUED,
        topics.APPROVED,
        topics.REJECTED,
        topics.RELEASED,
        topics.INVENTORY_UPDATED,
        topics.LOW_STOCK,
    }


def test_a_full_approval_makes_the_request_approved_with_its_allocations(hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff, units=2)
    event = approved_event(blood_request)

    _handle(event)

    blood_request.refresh_from_db()
    assert blood_request.status == "APPROVED"
    assert blood_request.units_allocated == 2
    assert len(blood_request.allocations) == 2
    assert blood_request.history.last().event_id == event.id


def test_a_partial_approval_makes_the_request_partially_approved(hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff, units=4)

    _handle(approved_event(blood_request, units=1))

    blood_request.refresh_from_db()
    assert blood_request.status == "PARTIALLY_APPROVED"
    assert blood_request.decision_detail == "1 of 4 unit(s) allocated"


def test_a_rejection_keeps_the_reason(hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff)

    _handle(rejected_event(blood_request, reason_code="NO_COMPATIBLE_UNITS"))

    blood_request.refresh_from_db()
    assert blood_request.status == "REJECTED"
    assert blood_request.decision_reason_code == "NO_COMPATIBLE_UNITS"
    assert _history(blood_request) == ["PENDING", "REJECTED"]


def test_a_repeated_decision_with_a_new_event_id_changes_nothing(hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff)
    first = approved_event(blood_request)
    _handle(first)

    _handle(approved_event(blood_request))

    blood_request.refresh_from_db()
    assert blood_request.status == "APPROVED"
    assert [a["din"] for a in blood_request.allocations] == [a.din for a in first.data.allocations]
    assert _history(blood_request) == ["PENDING", "APPROVED"]


def test_a_rejection_after_an_approval_is_ignored(hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff)
    _handle(approved_event(blood_request))

    _handle(rejected_event(blood_request))

    blood_request.refresh_from_db()
    assert blood_request.status == "APPROVED"
    assert _history(blood_request) == ["PENDING", "APPROVED"]


def test_a_late_approval_after_a_cancel_does_not_change_the_status(hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff)
    services.cancel_blood_request(blood_request_id=blood_request.id, hospital=hospital, user=staff, reason="no longer")

    _handle(approved_event(blood_request))
    _handle(rejected_event(blood_request, reason_code="CANCELLED_BEFORE_DECISION"))

    blood_request.refresh_from_db()
    assert blood_request.status == "CANCELLED"
    assert blood_request.allocations == []
    assert _history(blood_request) == ["PENDING", "CANCELLED"]


def test_a_decision_after_receipt_changes_nothing(hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff)
    receive_all(blood_request, user=staff)

    _handle(rejected_event(blood_request))

    blood_request.refresh_from_db()
    assert blood_request.status == "FULFILLED"


def test_released_units_are_kept_and_not_dispatched(hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff, units=2)
    approval = approved_event(blood_request)
    _handle(approval)
    released = str(approval.data.allocations[0].unit_id)

    _handle(released_event(blood_request, [released]))
    blood_request.refresh_from_db()
    _handle(dispatched_event(blood_request))
    receive_all(BloodRequest.objects.get(pk=blood_request.pk), user=staff)

    blood_request.refresh_from_db()
    assert blood_request.released_unit_ids == [released]
    assert [str(u.bank_unit_id) for u in blood_request.local_units.all()] == [str(approval.data.allocations[1].unit_id)]


def test_a_dispatch_that_overtakes_the_approval_is_taken_and_the_approval_kept(hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff, units=1)
    approval = approved_event(blood_request)
    units = [a.model_dump(mode="json") for a in approval.data.allocations]

    _handle(dispatched_event(blood_request, units))
    _handle(approval)

    blood_request.refresh_from_db()
    assert blood_request.status == "DISPATCHED"
    assert blood_request.decided_at is not None
    assert _history(blood_request) == ["PENDING", "DISPATCHED"]


@pytest.mark.parametrize("then", ["received", "cancelled"])
def test_an_approval_overtaken_by_its_dispatch_is_kept_after_the_units_were_received_or_the_request_cancelled(
    hospital, staff, then
):
    """Seen under the fault tests: the dispatch came first, the bags were scanned in (or the request cancelled)
    before the approval arrived; the approval (its units, uncrossmatched) must still be kept."""
    blood_request = make_request(hospital=hospital, user=staff, units=2)
    approval = approved_event(blood_request, uncrossmatched=True)
    units = [a.model_dump(mode="json") for a in approval.data.allocations]
    _handle(dispatched_event(blood_request, units))
    blood_request.refresh_from_db()
    if then == "received":
        receive_all(blood_request, user=staff)
    else:
        services.cancel_blood_request(blood_request_id=blood_request.id, hospital=hospital, user=staff)

    _handle(approval)

    blood_request.refresh_from_db()
    assert blood_request.status == ("FULFILLED" if then == "received" else "CANCELLED")
    assert blood_request.decided_at is not None and blood_request.uncrossmatched
    assert (blood_request.units_allocated, blood_request.allocations) == (2, units)
    assert _history(blood_request) == ["PENDING", "DISPATCHED", "FULFILLED" if then == "received" else "CANCELLED"]


def test_a_dispatch_after_a_cancel_keeps_the_request_cancelled_but_receivable(hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff, units=1)
    approval = approved_event(blood_request)
    _handle(approval)
    services.cancel_blood_request(blood_request_id=blood_request.id, hospital=hospital, user=staff)
    blood_request.refresh_from_db()

    _handle(dispatched_event(blood_request))
    receive_all(BloodRequest.objects.get(pk=blood_request.pk), user=staff)

    blood_request.refresh_from_db()
    assert blood_request.status == "CANCELLED"
    assert blood_request.received_at is not None
    assert blood_request.local_units.count() == 1


def test_a_release_after_a_cancel_is_recorded_without_a_status_change(hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff)
    approval = approved_event(blood_request)
    _handle(approval)
    services.cancel_blood_request(blood_request_id=blood_request.id, hospital=hospital, user=staff)

    _handle(released_event(blood_request, [str(a.unit_id) for a in approval.data.allocations]))

    blood_request.refresh_from_db()
    assert blood_request.status == "CANCELLED"
    assert len(blood_request.released_unit_ids) == 2
    assert blood_request.released_at is not None


@pytest.mark.parametrize("make_event", [approved_event, rejected_event])
def test_a_decision_for_an_unknown_request_is_logged_and_ignored(hospital, staff, caplog, make_event):
    stranger = BloodRequest(id=uuid.uuid4(), hospital=hospital, units=1, blood_group="O+", component="RED_CELLS")
    with caplog.at_level(logging.WARNING):
        _handle(make_event(stranger))

    assert "unknown request" in caplog.text
    assert not BloodRequest.objects.exists()


def test_a_decision_naming_another_hospital_is_ignored(hospital, staff, other_hospital):
    blood_request = make_request(hospital=hospital, user=staff)
    forged = build_event(
        topics.REJECTED,
        {
            "request_id": str(blood_request.id),
            "hospital_id": str(other_hospital.id),
            "reason_code": "INVALID_REQUEST",
            "detail": "x",
            "decided_at": "2026-01-01T00:00:00Z",
        },
        source="bloodbank-service",
        subject=str(blood_request.id),
    )

    _handle(parse_event(forged.to_bytes()))

    blood_request.refresh_from_db()
    assert blood_request.status == "PENDING"
