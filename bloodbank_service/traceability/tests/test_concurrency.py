"""Concurrent dispatch, cancel, fates and recall on PostgreSQL: row locks keep each step once per unit."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from allocation.services import cancel_blood_request
from django.db import connection
from inventory.models import Unit, UnitStatus

from shared_events import topics
from shared_events.schemas import BloodCancelledV1, UnitFateV1
from traceability import services
from traceability.models import Dispatch, UnitFate
from traceability.tests.support import approved_request, fate_payload, published, units_of

pytestmark = pytest.mark.django_db(transaction=True)


def _together(*actions) -> list:
    start = threading.Barrier(len(actions))

    def run(action):
        start.wait()
        try:
            return action()
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test compares
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(actions)) as pool:
        return [future.result() for future in [pool.submit(run, action) for action in actions]]


def test_two_dispatches_and_a_cancel_at_once_issue_each_unit_once(unit_factory):
    unit_factory.create_batch(2, blood_group="O+")
    bank_request = approved_request(units=2)
    cancel = BloodCancelledV1(
        request_id=bank_request.request_id,
        hospital_id=bank_request.hospital_id,
        cancelled_by="nurse",
        cancelled_at=datetime.now(UTC),
    )

    _together(
        lambda: services.dispatch_request(request_id=bank_request.request_id, by="a"),
        lambda: services.dispatch_request(request_id=bank_request.request_id, by="b"),
        lambda: cancel_blood_request(cancel=cancel),
    )

    statuses = {unit.status for unit in units_of(bank_request)}
    dispatched = Dispatch.objects.filter(request_id=bank_request.request_id).count()
    assert dispatched <= 1
    if dispatched:  # dispatched first: the cancel leaves the issued units alone
        assert statuses == {UnitStatus.ISSUED} and len(published(topics.UNITS_DISPATCHED)) == 1
        assert published(topics.RELEASED) == []
    else:  # cancelled first: back on the shelf, nothing sent
        assert statuses == {UnitStatus.AVAILABLE} and published(topics.UNITS_DISPATCHED) == []


def test_two_different_fates_of_one_unit_at_once_keep_exactly_one(unit_factory):
    unit_factory.create_batch(1, blood_group="O+")
    bank_request = approved_request(units=1)
    services.dispatch_request(request_id=bank_request.request_id, by="a")
    [unit] = units_of(bank_request)

    def fate(kind: str):
        data = UnitFateV1.model_validate(fate_payload(bank_request, unit, kind))
        return lambda: services.record_fate(data=data, event_id=uuid.uuid4())

    outcomes = _together(fate("TRANSFUSED"), fate("WASTED"))

    assert UnitFate.objects.count() == 1
    assert sum(isinstance(o, Exception) for o in outcomes) == 1
    assert Unit.objects.get(pk=unit.pk).status == UnitFate.objects.get().fate


def test_a_recall_and_a_dispatch_at_once_never_send_a_recalled_unit(unit_factory):
    unit_factory.create_batch(2, blood_group="O+")
    bank_request = approved_request(units=2)
    recalled = units_of(bank_request)[0]

    outcomes = _together(
        lambda: services.issue_recall(dins=[recalled.din], reason="DONOR_INFECTION", severity="HIGH", by="x"),
        lambda: services.dispatch_request(request_id=bank_request.request_id, by="a"),
    )
    # Both succeed, one after the other (the same lock order: never a deadlock victim).
    assert not [outcome for outcome in outcomes if isinstance(outcome, Exception)], outcomes

    recalled.refresh_from_db()
    sent = {unit["unit_id"] for event in published(topics.UNITS_DISPATCHED) for unit in event["units"]}
    if str(recalled.pk) in sent:  # dispatched first: the recall lists it to the hospital
        assert recalled.status == UnitStatus.ISSUED and published(topics.RECALL_ISSUED)[0]["hospitals"]
    else:
        assert recalled.status == UnitStatus.QUARANTINED
