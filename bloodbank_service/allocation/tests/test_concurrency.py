"""Concurrent decisions on PostgreSQL: row locks keep every unit in at most one allocation."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import make_event
from django.db import connection, transaction
from inventory.models import Unit, UnitStatus

from allocation.handlers import HANDLERS
from allocation.models import Allocation, BankRequest, RequestStatus
from shared_events import topics
from shared_events.django.models import OutboxEvent
from shared_events.envelope import parse_event
from shared_events.testing import requested_payload

pytestmark = pytest.mark.django_db(transaction=True)


def test_forty_requests_decided_by_four_threads_never_share_or_overdraw_thirty_units(unit_factory):
    units = unit_factory.create_batch(30, blood_group="O+")
    payloads = [
        requested_payload(units=1 + i % 2, allow_partial=i % 3 != 0, blood_group="O+" if i % 4 else "AB+")
        for i in range(40)
    ]
    start = threading.Barrier(4)

    def worker(chunk: list[dict]) -> None:
        start.wait()  # all four begin together
        try:
            for payload in chunk:
                with transaction.atomic():
                    HANDLERS[topics.REQUESTED](make_event(topics.REQUESTED, payload))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(worker, payloads[i::4]) for i in range(4)]:
            future.result()

    live = list(Allocation.objects.filter(released_at__isnull=True).values_list("unit_id", flat=True))
    assert len(live) == len(set(live)), "a unit was allocated twice"
    assert len(live) <= 30
    assert Unit.objects.filter(status=UnitStatus.ALLOCATED).count() == len(live)
    assert set(live) <= {u.pk for u in units}
    assert not BankRequest.objects.filter(status=RequestStatus.WAITING).exists()
    decisions = Counter(
        OutboxEvent.objects.filter(event_type__in=[topics.APPROVED, topics.REJECTED]).values_list("key", flat=True)
    )
    assert set(decisions) == {p["request_id"] for p in payloads}
    assert set(decisions.values()) == {1}, "a request was decided twice"
    allocated_in_events = sum(
        parse_event(bytes(row.value)).data.units_allocated
        for row in OutboxEvent.objects.filter(event_type=topics.APPROVED)
    )
    assert allocated_in_events == len(live)
    # Stock events were serialised per key: the last one published tells the true count.
    last = parse_event(
        bytes(OutboxEvent.objects.filter(event_type=topics.INVENTORY_UPDATED, key="RED_CELLS:O+").last().value)
    )
    assert last.data.available_units == Unit.objects.filter(status=UnitStatus.AVAILABLE).count()
