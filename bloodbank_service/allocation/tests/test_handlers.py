"""Event handlers: redelivered and repeated requests, cancels in either order, the real broker."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest
from conftest import cancelled_payload, make_event
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from inventory.models import StockSnapshot, Unit, UnitStatus

from allocation import pg
from allocation.handlers import HANDLERS
from allocation.models import Allocation, BankRequest, RequestStatus
from allocation.services import decide_new_waiting_requests
from shared_events import topics
from shared_events.django.consumer import EventConsumer
from shared_events.django.models import OutboxEvent
from shared_events.django.outbox import publish
from shared_events.django.relay import OutboxRelay
from shared_events.envelope import parse_event
from shared_events.testing import read_topic, requested_payload, running, wait_for


def handle(event) -> None:
    """As the consumer runs a handler: inside a transaction."""
    with transaction.atomic():
        HANDLERS[event.type](event)


def decision_rows(request_id) -> list[OutboxEvent]:
    return list(
        OutboxEvent.objects.filter(key=str(request_id), event_type__in=[topics.APPROVED, topics.REJECTED]).order_by(
            "id"
        )
    )


@pytest.mark.django_db
def test_a_repeated_request_gets_the_same_decision_byte_for_byte_and_nothing_new(unit_factory):
    unit_factory.create_batch(5)
    payload = requested_payload(units=2)
    handle(make_event(topics.REQUESTED, payload))
    # The hospital's watchdog re-publishes the still-pending request as a new event (new id).
    handle(make_event(topics.REQUESTED, payload))
    first, again = decision_rows(payload["request_id"])
    assert bytes(again.value) == bytes(first.value)
    assert again.event_id == first.event_id == parse_event(bytes(first.value)).id
    assert again.headers == first.headers == {"content-type": "application/cloudevents+json; charset=UTF-8"}
    assert Unit.objects.filter(status=UnitStatus.ALLOCATED).count() == 2
    assert Allocation.objects.count() == 2


@pytest.mark.django_db
def test_a_repeated_rejected_request_gets_its_rejection_again(unit_factory):
    payload = requested_payload(units=2)
    handle(make_event(topics.REQUESTED, payload))
    unit_factory.create_batch(5)  # stock arrives after the rejection: the decision stands
    handle(make_event(topics.REQUESTED, payload))
    first, again = decision_rows(payload["request_id"])
    assert bytes(again.value) == bytes(first.value) and first.event_type == topics.REJECTED
    assert not Unit.objects.filter(status=UnitStatus.ALLOCATED).exists()


@pytest.mark.django_db
def test_a_cancel_after_approval_releases_the_units_and_publishes_the_release(unit_factory):
    unit_factory.create_batch(3)
    payload = requested_payload(units=2)
    handle(make_event(topics.REQUESTED, payload))
    handle(make_event(topics.CANCELLED, cancelled_payload(payload["request_id"], payload["hospital_id"])))
    assert Unit.objects.filter(status=UnitStatus.AVAILABLE).count() == 3
    assert Allocation.objects.filter(released_at__isnull=True).count() == 0
    (row,) = OutboxEvent.objects.filter(event_type=topics.RELEASED)
    released = parse_event(bytes(row.value))
    allocated = {str(a.unit_id) for a in Allocation.objects.all()}
    assert {str(u) for u in released.data.unit_ids} == allocated
    assert released.data.reason == "CANCELLED" and row.key == payload["request_id"]
    assert BankRequest.objects.get(pk=payload["request_id"]).cancelled_at is not None


@pytest.mark.django_db
def test_a_repeated_cancel_releases_nothing_twice(unit_factory):
    unit_factory.create_batch(3)
    payload = requested_payload(units=2)
    handle(make_event(topics.REQUESTED, payload))
    cancel = cancelled_payload(payload["request_id"], payload["hospital_id"])
    handle(make_event(topics.CANCELLED, cancel))
    handle(make_event(topics.CANCELLED, cancel))
    assert OutboxEvent.objects.filter(event_type=topics.RELEASED).count() == 1


@pytest.mark.django_db
def test_a_cancel_before_the_request_ends_rejected_and_the_late_request_allocates_nothing(unit_factory):
    unit_factory.create_batch(3)
    payload = requested_payload(units=2)
    handle(make_event(topics.CANCELLED, cancelled_payload(payload["request_id"], payload["hospital_id"])))
    handle(make_event(topics.REQUESTED, payload))
    first, again = decision_rows(payload["request_id"])
    rejected = parse_event(bytes(first.value))
    assert rejected.type == topics.REJECTED and rejected.data.reason_code == "CANCELLED_BEFORE_DECISION"
    assert bytes(again.value) == bytes(first.value)
    assert not Unit.objects.filter(status=UnitStatus.ALLOCATED).exists()
    bank_request = BankRequest.objects.get(pk=payload["request_id"])
    assert bank_request.component == "RED_CELLS" and bank_request.units_requested == 2  # details kept for the record


@pytest.mark.django_db
def test_a_cancel_of_a_waiting_scheduled_request_rejects_it_before_any_allocation(unit_factory):
    unit_factory.create_batch(3)
    payload = requested_payload(units=2, priority="SCHEDULED")
    handle(make_event(topics.REQUESTED, payload))
    assert BankRequest.objects.get(pk=payload["request_id"]).status == RequestStatus.WAITING
    handle(make_event(topics.CANCELLED, cancelled_payload(payload["request_id"], payload["hospital_id"])))
    bank_request = BankRequest.objects.get(pk=payload["request_id"])
    assert (bank_request.status, bank_request.reason_code) == ("REJECTED", "CANCELLED_BEFORE_DECISION")
    assert not Unit.objects.filter(status=UnitStatus.ALLOCATED).exists()


@pytest.mark.django_db(transaction=True)
def test_requests_and_cancels_travel_through_the_real_broker(kafka_topics, unit_factory):
    unit_factory.create_batch(4, blood_group="O+")
    approved_payload = requested_payload(units=2)
    cancelled_first = requested_payload(units=1)
    relay_stop = threading.Event()
    consumer = EventConsumer(handlers=HANDLERS, stop=threading.Event(), group_id=f"bank-{uuid.uuid4().hex[:8]}")
    with running(OutboxRelay(stop=relay_stop).run, relay_stop), running(consumer.run, consumer.stop):
        with transaction.atomic():
            # What the hospital would publish (written to this database's outbox for the test's relay).
            publish(topics.REQUESTED, approved_payload, subject=approved_payload["request_id"])
            publish(
                topics.CANCELLED,
                cancelled_payload(cancelled_first["request_id"], cancelled_first["hospital_id"]),
                subject=cancelled_first["request_id"],
            )
        wait_for(
            lambda: BankRequest.objects.filter(status__in=["APPROVED", "REJECTED"]).count() == 2,
            timeout=30,
            message="both decided",
        )
        with transaction.atomic():
            publish(topics.REQUESTED, cancelled_first, subject=cancelled_first["request_id"])  # arrives late
        wait_for(
            lambda: BankRequest.objects.filter(pk=cancelled_first["request_id"], requested_at__isnull=False).exists(),
            message="the late request handled",
        )
        wait_for(lambda: not OutboxEvent.objects.filter(sent_at__isnull=True).exists(), message="decisions published")
    (approved,) = read_topic(topics.topic_name(topics.APPROVED), 1)
    assert approved.key().decode() == approved_payload["request_id"]
    assert parse_event(approved.value()).data.units_allocated == 2
    rejections = read_topic(topics.topic_name(topics.REJECTED), 2)
    reasons = {parse_event(m.value()).data.reason_code for m in rejections}
    assert reasons == {"CANCELLED_BEFORE_DECISION"}
    assert {m.value() for m in rejections} == {rejections[0].value()}  # the repeat is the same bytes
    assert Unit.objects.filter(status=UnitStatus.ALLOCATED).count() == 2


def _fetched_from_the_broker(payloads: list[dict], topic: str = topics.REQUESTED) -> tuple[list, EventConsumer]:
    """``payloads`` published as ``topic`` (hospital.blood.requested) through the relay, read back, and a bank consumer.

    The messages come partition by partition: one request's stay in publishing order.
    """
    with transaction.atomic():
        for payload in payloads:
            publish(topic, payload, subject=payload["request_id"])
    relay_stop = threading.Event()
    with running(OutboxRelay(stop=relay_stop).run, relay_stop):
        wait_for(lambda: not OutboxEvent.objects.filter(sent_at__isnull=True).exists(), message="all published")
    messages = read_topic(topics.topic_name(topic), len(payloads))
    return messages, EventConsumer(handlers=HANDLERS, stop=threading.Event(), group_id=f"bank-{uuid.uuid4().hex[:8]}")


def _scheduled_then_emergency_for_the_last_two_units(unit_factory) -> tuple[dict, dict, list, EventConsumer]:
    """Two O+ units in stock; a SCHEDULED request for both, then an EMERGENCY one, fetched in one batch."""
    unit_factory.create_batch(2, blood_group="O+")
    scheduled, emergency = requested_payload(units=2, priority="SCHEDULED"), requested_payload(units=2)
    messages, consumer = _fetched_from_the_broker([scheduled, emergency])
    return scheduled, emergency, messages, consumer


def _emergency_went_first(scheduled: dict, emergency: dict) -> bool:
    return (
        BankRequest.objects.get(pk=emergency["request_id"]).status == RequestStatus.APPROVED
        and BankRequest.objects.get(pk=scheduled["request_id"]).status == RequestStatus.REJECTED
    )


@pytest.mark.django_db(transaction=True)
def test_a_batch_with_more_behind_it_leaves_its_scheduled_request_to_wait_and_an_emergency_still_goes_first(
    kafka_topics, unit_factory
):
    scheduled, emergency, messages, consumer = _scheduled_then_emergency_for_the_last_two_units(unit_factory)

    assert consumer.process_batch(messages, caught_up=False) == messages  # a full batch: more may be fetched
    assert BankRequest.objects.get(pk=scheduled["request_id"]).status == RequestStatus.WAITING
    assert decide_new_waiting_requests() == 1  # what a later caught-up batch (or the periodic run) does
    assert decide_new_waiting_requests() == 0  # nothing recorded WAITING since: not even a query
    assert _emergency_went_first(scheduled, emergency)


@pytest.mark.django_db(transaction=True)
def test_a_caught_up_batch_decides_its_scheduled_request_in_its_own_transaction_after_its_emergency(
    kafka_topics, unit_factory
):
    scheduled, emergency, messages, consumer = _scheduled_then_emergency_for_the_last_two_units(unit_factory)
    consumer.when_caught_up = [decide_new_waiting_requests]  # as the worker's settings say

    assert consumer.process_batch(messages, caught_up=True) == messages

    assert _emergency_went_first(scheduled, emergency)
    with connection.cursor() as cursor:  # the transaction that last wrote each row
        cursor.execute("SELECT DISTINCT xmin::text FROM allocation_bankrequest")
        assert len(cursor.fetchall()) == 1, "both decided in the batch's one transaction"
    assert decide_new_waiting_requests() == 0  # nothing left waiting for a transaction of its own


@pytest.mark.django_db(transaction=True)
def test_the_decisions_of_one_batch_publish_their_stock_key_once_with_the_level_after_all_of_them(
    kafka_topics, unit_factory
):
    unit_factory.create_batch(10, blood_group="O+")
    payloads = [requested_payload(units=2), requested_payload(units=3), requested_payload(units=1)]
    messages, consumer = _fetched_from_the_broker(payloads)

    assert consumer.process_batch(messages) == messages  # one transaction, as the worker runs a batch

    assert BankRequest.objects.filter(status=RequestStatus.APPROVED).count() == 3
    rows = list(OutboxEvent.objects.filter(event_type__in=[topics.APPROVED, topics.INVENTORY_UPDATED]).order_by("id"))
    assert [row.event_type for row in rows] == [topics.APPROVED] * 3 + [topics.INVENTORY_UPDATED]
    stock = parse_event(bytes(rows[-1].value)).data
    assert (stock.component, stock.blood_group, stock.available_units) == ("RED_CELLS", "O+", 4)  # 10 - 2 - 3 - 1
    assert StockSnapshot.objects.get(component="RED_CELLS", blood_group="O+").available_units == 4


@pytest.mark.django_db(transaction=True)
def test_a_batch_looks_its_requests_up_in_one_statement_and_still_finds_those_the_bank_has(
    kafka_topics, unit_factory, monkeypatch
):
    unit_factory.create_batch(10, blood_group="O+")
    known, cancelled_first = requested_payload(units=1), requested_payload(units=2)
    new = [requested_payload(units=2), requested_payload(units=3)]
    requested, consumer = _fetched_from_the_broker([known, known, cancelled_first, *new])  # known: twice
    by_request: dict[str, list] = {}
    for message in requested:
        by_request.setdefault(message.key().decode(), []).append(message)
    (cancel,), _ = _fetched_from_the_broker(
        [cancelled_payload(cancelled_first["request_id"], cancelled_first["hospital_id"])], topic=topics.CANCELLED
    )
    first, repeat = by_request[known["request_id"]]
    assert consumer.process_batch([first]) == [first]  # the bank has it from now on
    lookups: Counter[str] = Counter()
    for name in ("request_exists_locked", "existing_requests_locked"):  # counted, and run against the database
        monkeypatch.setattr(pg, name, _counted(getattr(pg, name), name, lookups))

    batch = [repeat, cancel, *by_request[cancelled_first["request_id"]], *(by_request[p["request_id"]][0] for p in new)]
    assert consumer.process_batch(batch) == batch

    # One statement for the repeat and the new requests; the request its cancel came before is looked up on its own.
    assert lookups == {"existing_requests_locked": 1, "request_exists_locked": 1}
    approvals = OutboxEvent.objects.filter(event_type=topics.APPROVED, key=known["request_id"])
    assert [bytes(row.value) for row in approvals] == [bytes(approvals[0].value)] * 2  # the decision again
    assert [BankRequest.objects.get(pk=p["request_id"]).status for p in new] == [RequestStatus.APPROVED] * 2
    late = BankRequest.objects.get(pk=cancelled_first["request_id"])
    assert (late.status, late.reason_code, late.requested_at is not None) == (
        RequestStatus.REJECTED,
        "CANCELLED_BEFORE_DECISION",
        True,
    )
    assert Unit.objects.filter(status=UnitStatus.ALLOCATED).count() == 1 + 2 + 3


def _counted(function, name: str, calls: Counter[str]):
    def counted(*args):
        calls.update([name])
        return function(*args)

    return counted


@pytest.mark.django_db
def test_the_batch_lookup_of_known_requests_is_planned_with_its_values_each_time(unit_factory):
    # A prepared statement's generic plan, chosen on a new (empty) bank, stayed a sequential scan as the table grew.
    unit_factory.create_batch(2, blood_group="O+")
    known = requested_payload(units=1)
    HANDLERS[topics.REQUESTED](make_event(topics.REQUESTED, known))
    stranger = uuid.uuid4()
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        for _ in range(7):  # past the five runs after which PostgreSQL would settle on a generic plan
            assert pg.existing_requests_locked([uuid.UUID(known["request_id"]), stranger]) == {
                uuid.UUID(known["request_id"])
            }
    lookups = [query["sql"] for query in queries if "allocation_bankrequest" in query["sql"]]
    assert len(lookups) == 7 and all(sql.startswith("SELECT request_id FROM") for sql in lookups), lookups
