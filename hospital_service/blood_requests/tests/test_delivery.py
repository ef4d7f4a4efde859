"""Through the real broker: the request goes out via the outbox relay, the decision comes back in."""

import threading
import uuid

import pytest
from bank_stock.models import BankStock
from confluent_kafka import Producer
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from testing_support.factories import approved_event, inventory_event, make_request

from blood_requests.handlers import HANDLERS
from blood_requests.models import BloodRequest
from blood_requests.services import record_approval, republish_stale_requests
from shared_events import topics
from shared_events.django.consumer import EventConsumer
from shared_events.django.models import InboxEvent, OutboxEvent
from shared_events.django.relay import OutboxRelay
from shared_events.envelope import parse_event
from shared_events.kafka_config import producer_config
from shared_events.testing import read_topic, running, wait_for
from shared_events.topics import dlq_topic, topic_name

pytestmark = pytest.mark.django_db(transaction=True)


def _produce(event) -> None:
    producer = Producer(producer_config())
    producer.produce(topic_name(event.type), key=event.subject, value=event.envelope.to_bytes())
    assert producer.flush(10) == 0


def _consumer() -> EventConsumer:
    return EventConsumer(
        handlers=HANDLERS, stop=threading.Event(), group_id=f"test-hospital-{uuid.uuid4().hex[:8]}", retry_backoff=0.01
    )


def test_a_request_is_published_and_its_approval_from_the_broker_applied(kafka_topics, hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff, units=2)
    relay_stop, consumer = threading.Event(), _consumer()

    with running(OutboxRelay(stop=relay_stop).run, relay_stop), running(consumer.run, consumer.stop):
        (message,) = read_topic(topic_name(topics.REQUESTED), 1)
        assert message.key() == str(blood_request.id).encode()
        assert str(parse_event(message.value()).data.request_id) == str(blood_request.id)

        approval = approved_event(blood_request)
        _produce(approval)
        _produce(approval)  # delivered twice: handled once
        _produce(inventory_event(blood_group="O-", available=3, level="LOW"))
        wait_for(
            lambda: BloodRequest.objects.get(id=blood_request.id).status == "APPROVED",
            message="the approval applied by the consumer",
        )
        wait_for(lambda: BankStock.objects.filter(blood_group="O-", level="LOW").exists(), message="bank stock")

    blood_request.refresh_from_db()
    assert list(blood_request.history.values_list("status", flat=True)) == ["PENDING", "APPROVED"]
    assert InboxEvent.objects.filter(event_id=approval.id).count() == 1


def test_a_new_request_its_history_and_its_event_are_written_in_one_statement(hospital, staff):
    with CaptureQueriesContext(connection) as queries:
        blood_request = make_request(hospital=hospital, user=staff, units=2)
    assert len(queries) == 1, [query["sql"][:80] for query in queries]  # no BEGIN, no COMMIT, one INSERT for all
    stored = BloodRequest.objects.get(id=blood_request.id)
    (first,) = blood_request.history.all()  # as the API answers it, with the key the statement generated
    assert list(stored.history.values_list("id", "status")) == [(first.id, "PENDING")]
    (row,) = OutboxEvent.objects.filter(key=str(blood_request.id))
    assert row.event_type == topics.REQUESTED and row.sent_at is None
    assert str(parse_event(bytes(row.value)).data.request_id) == str(blood_request.id)


def test_an_approval_is_applied_with_the_locked_read_and_one_write(hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff, units=2)
    approval = approved_event(blood_request)
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        record_approval(data=approval.data, event_id=approval.id)
    control = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")
    statements = [query["sql"] for query in queries if not query["sql"].startswith(control)]
    assert len(statements) == 2, [sql[:80] for sql in statements]  # SELECT ... FOR UPDATE; the status and history
    blood_request.refresh_from_db()
    assert blood_request.status == "APPROVED" and blood_request.units_allocated == 2
    assert list(blood_request.history.values_list("status", "event_id")) == [
        ("PENDING", None),
        ("APPROVED", approval.id),
    ]


def test_a_decision_for_a_request_we_do_not_know_is_not_dead_lettered(kafka_topics, hospital, staff):
    stranger = BloodRequest(id=uuid.uuid4(), hospital=hospital, units=1, blood_group="O+", component="RED_CELLS")
    known = make_request(hospital=hospital, user=staff)
    consumer = _consumer()
    relay_stop = threading.Event()

    with running(OutboxRelay(stop=relay_stop).run, relay_stop), running(consumer.run, consumer.stop):
        _produce(approved_event(stranger))
        _produce(approved_event(known))
        wait_for(lambda: BloodRequest.objects.get(id=known.id).status == "APPROVED", message="the known request")

    assert InboxEvent.objects.filter(outcome="DEAD_LETTERED").count() == 0
    assert not OutboxEvent.objects.filter(topic=dlq_topic("hospital")).exists()


def test_a_lost_request_event_is_recovered_by_the_watchdog(kafka_topics, hospital, staff, settings):
    settings.REQUEST_REPUBLISH_AFTER_SECONDS = 0
    blood_request = make_request(hospital=hospital, user=staff)
    # The broker lost the first publication: the relay never sent it.
    OutboxEvent.objects.filter(event_type=topics.REQUESTED).delete()

    assert republish_stale_requests() == 1
    relay_stop = threading.Event()
    with running(OutboxRelay(stop=relay_stop).run, relay_stop):
        (message,) = read_topic(topic_name(topics.REQUESTED), 1)
    assert str(parse_event(message.value()).data.request_id) == str(blood_request.id)
