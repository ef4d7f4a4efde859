"""Concurrent decisions on PostgreSQL: row locks keep every unit in at most one allocation."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import make_event
from django.db import connection, transaction
from django.utils import timezone
from inventory.models import Unit, UnitStatus
from inventory.services import publish_coalesced_stock, stock_event_interval

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
    # Stock events were serialised per key: once the flush has sent what decisions left to it
    # (their key had just been published), the last one published tells the true count.
    publish_coalesced_stock(now=timezone.now() + stock_event_interval())
    last = parse_event(
        bytes(OutboxEvent.objects.filter(event_type=topics.INVENTORY_UPDATED, key="RED_CELLS:O+").last().value)
    )
    assert last.data.available_units == Unit.objects.filter(status=UnitStatus.AVAILABLE).count()


def _mtp(**overrides) -> dict:
    payload = requested_payload(protocol="MTP", blood_group="UNKNOWN", authorised_by="dr_khan", **overrides)
    del payload["component"], payload["units"]
    return payload


def _pack(request: dict, pack: int) -> dict:
    return {
        "request_id": request["request_id"],
        "hospital_id": request["hospital_id"],
        "pack": pack,
        "requested_by": "stmary_staff",
        "requested_at": request["requested_at"],
    }


def test_emergency_release_mtp_packs_and_ordinary_requests_racing_for_the_last_o_negative_never_overdraw(
    unit_factory,
):
    o_neg = unit_factory.create_batch(7, blood_group="O-")
    o_pos = unit_factory.create_batch(3, blood_group="O+")
    a_pos = unit_factory.create_batch(4, blood_group="A+")
    plasma = unit_factory.create_batch(6, component="PLASMA", blood_group="AB+")
    plasma += unit_factory.create_batch(2, component="PLASMA", blood_group="A+")  # not HT-negative: never released
    units = o_neg + o_pos + a_pos + plasma
    mtps = [_mtp(), _mtp(rhd_negative_required=False)]
    # Each thread's own stream, in order: a pack follows its request in the same thread (as per partition).
    streams: list[list[tuple[str, dict]]] = [
        [(topics.REQUESTED, mtps[0]), (topics.MTP_PACK_REQUESTED, _pack(mtps[0], 2))],
        [(topics.REQUESTED, mtps[1]), (topics.MTP_PACK_REQUESTED, _pack(mtps[1], 2))],
        [
            (topics.REQUESTED, requested_payload(blood_group="UNKNOWN", authorised_by="dr_khan", units=3)),
            (topics.REQUESTED, requested_payload(blood_group="A-", units=2)),  # unconfirmed RhD-negative
            (topics.REQUESTED, requested_payload(blood_group="UNKNOWN", authorised_by="dr_lee", units=2)),
        ],
        [
            (topics.REQUESTED, requested_payload(blood_group="O-", units=2, group_confirmed=True)),
            (topics.REQUESTED, requested_payload(blood_group="A+", units=3, group_confirmed=True)),
            (topics.REQUESTED, requested_payload(blood_group="B-", units=1)),
        ],
    ]
    start = threading.Barrier(4)

    def worker(stream: list[tuple[str, dict]]) -> None:
        start.wait()
        try:
            for event_type, payload in stream:
                with transaction.atomic():
                    HANDLERS[event_type](make_event(event_type, payload))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(worker, stream) for stream in streams]:
            future.result()

    live = list(Allocation.objects.filter(released_at__isnull=True).select_related("unit", "request"))
    assert len({a.unit_id for a in live}) == len(live), "a unit was allocated twice"
    assert set(a.unit_id for a in live) <= {u.pk for u in units}
    assert Unit.objects.filter(status=UnitStatus.ALLOCATED).count() == len(live)
    assert sum(1 for a in live if a.unit.blood_group == "O-") <= len(o_neg)
    for allocation in live:
        request, unit = allocation.request, allocation.unit
        if request.blood_group == "UNKNOWN" or not request.group_confirmed:
            if unit.component == "RED_CELLS":
                assert unit.blood_group in ("O-", "O+"), "a non-O red cell on an unknown or unconfirmed group"
                if request.rhd_negative_required and (request.blood_group in ("UNKNOWN", "A-", "B-")):
                    assert unit.blood_group == "O-"
            else:
                assert unit.blood_group == "AB+", "plasma for an unknown group: AB, or A only if HT-negative"
    # Every decision once: one per STANDARD request, one per MTP pack; their counts add up to the allocations.
    rows = OutboxEvent.objects.filter(event_type__in=[topics.APPROVED, topics.REJECTED])
    decided = Counter((row.key, parse_event(bytes(row.value)).data.pack) for row in rows)
    assert set(decided.values()) == {1}
    assert len(decided) == 2 * 2 + 6
    allocated_in_events = sum(
        parse_event(bytes(row.value)).data.units_allocated
        for row in OutboxEvent.objects.filter(event_type=topics.APPROVED)
    )
    assert allocated_in_events == len(live)
    # A decision leaves its key's stock event to the flush when the key was published just before
    # (coalesced): once the flush has sent it, the last one published tells the true count.
    publish_coalesced_stock(now=timezone.now() + stock_event_interval())
    last = parse_event(
        bytes(OutboxEvent.objects.filter(event_type=topics.INVENTORY_UPDATED, key="RED_CELLS:O-").last().value)
    )
    assert last.data.available_units == Unit.objects.filter(status=UnitStatus.AVAILABLE, blood_group="O-").count()
    assert not BankRequest.objects.filter(status=RequestStatus.WAITING).exists()
