"""Delivery guarantees against the real broker and PostgreSQL: nothing lost, nothing doubled."""

import threading
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from shared_events.django.models import InboxEvent, OutboxEvent
from shared_events.django.outbox import enqueue_message, publish
from shared_events.django.relay import OutboxRelay
from shared_events.envelope import parse_event
from shared_events.kafka_config import consumer_config, producer_config
from shared_events.kafka_server import free_port
from shared_events.testing import read_topic, requested_payload, running, wait_for
from shared_events.topics import dlq_topic, topic_name
from tests.testapp.models import Effect
from tests.worker_process import WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True)

REQUESTED = "hospital.blood.requested"


def _publish(subject: str, **overrides):
    with transaction.atomic():
        return publish(REQUESTED, requested_payload(**overrides), subject=subject)


def _effects(subject: str) -> int:
    return Effect.objects.filter(subject=subject).count()


def _produce_raw(topic: str, key: str, value: bytes) -> None:
    producer = Producer(producer_config())
    producer.produce(topic, key=key, value=value)
    assert producer.flush(10) == 0


def test_an_event_written_to_the_outbox_is_published_and_handled(make_consumer):
    event = _publish("r-1")
    relay_stop, consumer = threading.Event(), make_consumer()
    with running(OutboxRelay(stop=relay_stop).run, relay_stop), running(consumer.run, consumer.stop):
        # The session's first event also waits for a cold broker: the group's first join and the idempotent
        # producer's id (slower with every registry topic created per test); 20 s was too tight under load.
        wait_for(lambda: _effects("r-1") == 1, timeout=60, message="the handler's effect")
        wait_for(lambda: OutboxEvent.objects.get(event_id=event.id).sent_at, message="the row marked sent")
    assert Effect.objects.get(subject="r-1").event_id == event.id
    assert InboxEvent.objects.filter(event_id=event.id, outcome="HANDLED").count() == 1


def test_the_same_event_delivered_twice_has_one_effect(make_consumer):
    event = _publish("dup")
    row = OutboxEvent.objects.get(event_id=event.id)
    enqueue_message(topic=row.topic, key="dup", value=bytes(row.value), headers={}, event_type=REQUESTED)
    _publish("dup", units=3)  # a later, distinct event on the same key: handled after both copies
    relay_stop, consumer = threading.Event(), make_consumer()
    with running(OutboxRelay(stop=relay_stop).run, relay_stop), running(consumer.run, consumer.stop):
        wait_for(lambda: _effects("dup") == 2, message="the distinct event handled after the duplicate")
    assert Effect.objects.filter(event_id=event.id).count() == 1
    assert len(read_topic(topic_name(REQUESTED), 3)) == 3


def test_a_poison_message_is_dead_lettered_with_headers_and_the_next_is_handled(make_consumer):
    topic = topic_name(REQUESTED)
    _produce_raw(topic, "poison", b"{not an event")
    _produce_raw(topic, "poison", b'{"specversion": "1.0", "type": "hospital.blood.requested"}')
    relay_stop, consumer = threading.Event(), make_consumer()
    _publish("poison")
    with running(OutboxRelay(stop=relay_stop).run, relay_stop), running(consumer.run, consumer.stop):
        wait_for(lambda: _effects("poison") == 1, message="the valid event after the poison")
        letters = read_topic(dlq_topic("hospital"), 2)
    assert [m.value() for m in letters] == [
        b"{not an event",
        b'{"specversion": "1.0", "type": "hospital.blood.requested"}',
    ]
    headers = dict(letters[0].headers())
    assert headers["dlq_original_topic"] == topic.encode()
    assert headers["dlq_consumer_group"] == consumer.group_id.encode()
    assert b"invalid envelope" in headers["dlq_error"]
    assert {"dlq_original_partition", "dlq_original_offset", "dlq_failed_at"} <= set(headers)
    assert letters[0].key() == b"poison"


def test_a_handler_that_keeps_failing_is_dead_lettered_and_the_loop_goes_on(make_consumer):
    failing = _publish("always-fails")
    _publish("after-failure")
    relay_stop, consumer = threading.Event(), make_consumer(max_attempts=3)
    with running(OutboxRelay(stop=relay_stop).run, relay_stop), running(consumer.run, consumer.stop):
        wait_for(lambda: _effects("after-failure") == 1, message="the event after the failing one")
        (letter,) = read_topic(dlq_topic("hospital"), 1)
    headers = dict(letter.headers())
    assert b"HandlerBroke" in headers["dlq_error"]
    assert headers["content-type"] == b"application/cloudevents+json; charset=UTF-8"  # the original's, kept
    assert parse_event(letter.value()).id == failing.id
    assert InboxEvent.objects.get(event_id=failing.id).outcome == "DEAD_LETTERED"
    assert _effects("always-fails") == 0


def test_a_database_outage_blocks_the_consumer_without_losing_the_event(make_consumer):
    event = _publish("outage")
    consumer = make_consumer()
    real_handle = consumer._handle
    outages = []

    def flaky_handle(*args, **kwargs):
        if len(outages) < 3:  # the first three attempts find the database unreachable
            outages.append(1)
            from django.db import OperationalError

            raise OperationalError("server closed the connection unexpectedly")
        return real_handle(*args, **kwargs)

    consumer._handle = flaky_handle
    relay_stop = threading.Event()
    with running(OutboxRelay(stop=relay_stop).run, relay_stop), running(consumer.run, consumer.stop):
        wait_for(lambda: _effects("outage") == 1, message="the event handled once the database is back")
    assert len(outages) == 3
    assert InboxEvent.objects.get(event_id=event.id).outcome == "HANDLED"
    assert not OutboxEvent.objects.filter(topic=dlq_topic("hospital")).exists()


def test_a_worker_killed_after_the_effect_rereads_the_event_and_the_inbox_skips_it(kafka_topics, tmp_path):
    group = f"crash-{uuid.uuid4().hex[:8]}"
    event = _publish("crash-after-effect")
    # The same static member id (as each deployed worker has): the restarted worker takes the killed
    # one's place at once, instead of waiting session.timeout.ms for the broker to notice it is gone.
    member = {"KAFKA_CONFIG_GROUP_ID": group, "KAFKA_GROUP_INSTANCE_ID": "worker-1"}
    crashing = WorkerProcess({"CRASH_AFTER_EFFECT": "1"} | member, tmp_path / "crashing.log")
    try:
        assert crashing.process.wait(timeout=120) == 137, crashing.output
    finally:
        crashing.kill()
    assert _effects("crash-after-effect") == 1

    _publish("after-restart")
    restarted = WorkerProcess(member, tmp_path / "restarted.log")
    try:
        wait_for(lambda: _effects("after-restart") == 1, timeout=120, message="the restarted worker handling")
        assert restarted.stop() == 0, restarted.output
    finally:
        restarted.kill()
    assert f"skipping hospital.blood.requested {event.id}: already in the inbox" in restarted.output
    assert _effects("crash-after-effect") == 1


def test_the_relay_publishes_rows_in_commit_order(kafka_topics):
    ids = [str(_publish("ordered", units=1 + i % 20).id) for i in range(40)]
    stop = threading.Event()
    with running(OutboxRelay(stop=stop).run, stop):
        wait_for(lambda: not OutboxEvent.objects.filter(sent_at__isnull=True).exists(), message="all rows sent")
    messages = read_topic(topic_name(REQUESTED), 40)
    assert [str(parse_event(m.value()).id) for m in messages] == ids


def test_a_round_s_confirmed_rows_are_marked_sent_by_the_next_round_s_read_in_one_statement(kafka_topics):
    first = _publish("mark-1")
    relay = OutboxRelay(stop=threading.Event())
    assert relay.publish_batch() == 1
    assert OutboxEvent.objects.get(event_id=first.id).sent_at is None, "its mark waits for the next read"
    second = _publish("mark-2")
    with CaptureQueriesContext(connection) as queries:
        assert relay.publish_batch() == 1
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert OutboxEvent.objects.get(event_id=first.id).sent_at is not None
    assert OutboxEvent.objects.get(event_id=second.id).sent_at is None
    relay._release()  # a relay that stops marks what the broker confirmed
    assert not OutboxEvent.objects.filter(sent_at__isnull=True).exists()
    messages = read_topic(topic_name(REQUESTED), 2)
    assert [parse_event(m.value()).id for m in messages] == [first.id, second.id], "each sent once"


def test_a_quiet_relay_marks_its_last_round_on_its_own(kafka_topics):
    event = _publish("quiet")
    relay = OutboxRelay(stop=threading.Event(), mark_within=0.05, idle_wait=0.05)
    assert relay._try_lead()  # listening from now on: the commit above notified nobody
    try:
        relay._step()  # publishes the row; no commit comes within mark_within to carry its mark
        assert OutboxEvent.objects.get(event_id=event.id).sent_at is not None
    finally:
        relay._release()


def test_rows_whose_delivery_was_not_confirmed_are_sent_again(kafka_topics):
    event = _publish("unconfirmed")
    dead_broker = {"bootstrap.servers": f"127.0.0.1:{free_port()}", "message.timeout.ms": 1000}
    failing = OutboxRelay(stop=threading.Event(), producer_overrides=dead_broker)
    assert failing.publish_batch() == -1
    row = OutboxEvent.objects.get(event_id=event.id)
    assert row.sent_at is None and row.attempts == 1 and row.last_error

    stop = threading.Event()
    with running(OutboxRelay(stop=stop).run, stop):
        wait_for(lambda: OutboxEvent.objects.get(event_id=event.id).sent_at, message="the row re-sent")
    (msg,) = read_topic(topic_name(REQUESTED), 1)
    assert parse_event(msg.value()).id == event.id


def test_a_second_relay_stands_by_while_the_first_holds_the_lock(kafka_topics):
    first_stop, second_stop = threading.Event(), threading.Event()
    first, second = OutboxRelay(stop=first_stop), OutboxRelay(stop=second_stop, standby_retry=0.05)
    with running(first.run, first_stop):
        wait_for(first.is_leader.is_set, message="the first relay leading")
        with running(second.run, second_stop):
            _publish("while-standing-by")
            wait_for(lambda: OutboxEvent.objects.filter(sent_at__isnull=False).exists(), message="a publish")
            assert not second.is_leader.is_set()
            first_stop.set()
            wait_for(second.is_leader.is_set, message="the second relay taking over")
            _publish("after-takeover")
            wait_for(lambda: not OutboxEvent.objects.filter(sent_at__isnull=True).exists(), message="sent by #2")


def test_a_worker_back_with_its_instance_id_keeps_its_static_membership(make_consumer, monkeypatch):
    from confluent_kafka.admin import AdminClient

    from shared_events.kafka_config import admin_config

    monkeypatch.setenv("KAFKA_GROUP_INSTANCE_ID", "worker-1")
    group = f"static-{uuid.uuid4().hex[:8]}"
    first = make_consumer(group_id=group)
    with running(first.run, first.stop):
        wait_for(first.assigned.is_set, message="the first instance's assignment")
    _publish("after-restart")  # while no instance runs
    relay_stop, again = threading.Event(), make_consumer(group_id=group)
    with running(OutboxRelay(stop=relay_stop).run, relay_stop), running(again.run, again.stop):
        wait_for(lambda: _effects("after-restart") == 1, message="the restarted instance handling the event")
        admin = AdminClient(admin_config())  # kept referenced until the answer is in
        members = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15).members
    assert [member.group_instance_id for member in members] == [f"{group}:worker-1"]


def test_a_consumer_failed_for_good_is_replaced_and_goes_on(make_consumer, monkeypatch):
    """A fatal error (here FENCED_INSTANCE_ID: another member joined with the same group.instance.id, as a
    static member's own rejoin does after its session timed out while its coordinator moved) ends a librdkafka
    consumer for good; the runner starts a new one, which rejoins and handles what comes next."""
    monkeypatch.setenv("KAFKA_GROUP_INSTANCE_ID", "worker-1")
    group = f"fenced-{uuid.uuid4().hex[:8]}"
    consumer = make_consumer(group_id=group)
    relay_stop = threading.Event()
    with running(consumer.run, consumer.stop), running(OutboxRelay(stop=relay_stop).run, relay_stop):
        wait_for(consumer.assigned.is_set, timeout=30, message="the first assignment")
        intruder = Consumer(consumer_config(group))  # the same group.instance.id
        intruder.subscribe([topic_name(REQUESTED)])
        wait_for(lambda: intruder.poll(0.1) is None and bool(intruder.assignment()), timeout=30, message="fenced")
        intruder.close()
        wait_for(lambda: consumer.fatal_errors >= 1, timeout=30, message="the fatal error seen")
        _publish("after-fencing")
        wait_for(lambda: _effects("after-fencing") == 1, timeout=60, message="a new consumer handling events")


def test_a_batch_with_a_failing_event_handles_the_others_once_and_dead_letters_the_bad_one(make_consumer):
    first, failing, last = _publish("batch-1"), _publish("always-fails"), _publish("batch-3")
    stop = threading.Event()
    with running(OutboxRelay(stop=stop).run, stop):
        wait_for(lambda: not OutboxEvent.objects.filter(sent_at__isnull=True).exists(), message="all sent")
    messages = read_topic(topic_name(REQUESTED), 3)
    consumer = make_consumer(max_attempts=2)

    done = consumer.process_batch(messages)

    assert done == messages  # every offset may be stored: handled or dead-lettered
    assert _effects("batch-1") == 1 and _effects("batch-3") == 1
    assert Effect.objects.filter(event_id__in=[first.id, last.id]).count() == 2
    assert InboxEvent.objects.get(event_id=failing.id).outcome == "DEAD_LETTERED"
    assert OutboxEvent.objects.filter(topic=dlq_topic("hospital"), key="always-fails").count() == 1


def test_a_batch_of_valid_events_is_handled_once_each_even_when_redelivered(make_consumer):
    for i in range(5):
        _publish(f"valid-{i}")
    stop = threading.Event()
    with running(OutboxRelay(stop=stop).run, stop):
        wait_for(lambda: not OutboxEvent.objects.filter(sent_at__isnull=True).exists(), message="all sent")
    messages = read_topic(topic_name(REQUESTED), 5)
    consumer = make_consumer()

    assert consumer.process_batch(messages) == messages
    assert consumer.process_batch(messages) == messages  # the same batch again: the inbox skips all five

    assert Effect.objects.filter(subject__startswith="valid-").count() == 5
    assert InboxEvent.objects.filter(consumer_group=consumer.group_id).count() == 5


def test_the_caught_up_tasks_run_in_the_transaction_of_a_batch_that_left_nothing_fetched(make_consumer):
    _publish("caught-up")
    seen: list[tuple[bool, int]] = []
    relay_stop = threading.Event()
    consumer = make_consumer(when_caught_up=[lambda: seen.append((connection.in_atomic_block, _effects("caught-up")))])
    with running(OutboxRelay(stop=relay_stop).run, relay_stop), running(consumer.run, consumer.stop):
        wait_for(lambda: seen, message="the task, run with the batch")
    assert set(seen) == {(True, 1)}  # in the event's transaction, after its handler, and never without a batch


def test_a_caught_up_task_that_fails_costs_the_batch_a_second_try_and_dead_letters_nothing(make_consumer):
    event = _publish("task-fails")
    relay_stop = threading.Event()
    with running(OutboxRelay(stop=relay_stop).run, relay_stop):
        messages = read_topic(topic_name(REQUESTED), 1)
    runs: list[bool] = []

    def broken_task() -> None:
        runs.append(connection.in_atomic_block)
        raise RuntimeError("the task is broken")

    consumer = make_consumer(when_caught_up=[broken_task])
    assert consumer.process_batch(messages, caught_up=True) == messages
    # In the batch's transaction (rolled back with it), then after the event, handled on its own, was committed.
    assert runs == [True, False]
    assert _effects("task-fails") == 1
    assert InboxEvent.objects.get(event_id=event.id).outcome == "HANDLED"
    assert not OutboxEvent.objects.filter(topic=dlq_topic("hospital")).exists()


def test_no_caught_up_task_runs_after_a_full_batch(make_consumer):
    _publish("full-batch")
    seen: list[int] = []
    relay_stop = threading.Event()
    consumer = make_consumer(batch_size=1, when_caught_up=[lambda: seen.append(1)])
    with running(OutboxRelay(stop=relay_stop).run, relay_stop), running(consumer.run, consumer.stop):
        wait_for(lambda: _effects("full-batch") == 1, message="the event handled")
    assert seen == []  # a full batch may have more behind it: not caught up


def test_replay_dlq_feeds_a_dead_letter_back_once_its_cause_is_fixed(make_consumer, monkeypatch):
    from shared_events.django.dlq import replay_dead_letters

    monkeypatch.setenv("HANDLER_BROKEN", "1")
    event = _publish("fails-until-fixed")
    relay_stop, consumer = threading.Event(), make_consumer(max_attempts=2)
    with running(OutboxRelay(stop=relay_stop).run, relay_stop), running(consumer.run, consumer.stop):
        (letter,) = read_topic(dlq_topic("hospital"), 1)
    assert _effects("fails-until-fixed") == 0
    assert dict(letter.headers())["dlq_consumer_group"] == consumer.group_id.encode()

    monkeypatch.delenv("HANDLER_BROKEN")  # the cause is fixed
    assert replay_dead_letters(idle_timeout=2.0) == (1, 0)
    assert Effect.objects.get(subject="fails-until-fixed").event_id == event.id
    assert replay_dead_letters(idle_timeout=2.0) == (0, 0)  # already replayed: nothing twice
    assert _effects("fails-until-fixed") == 1


def test_a_broker_restarted_on_its_data_keeps_the_log_and_the_relay_carries_on(monkeypatch, tmp_path):
    """The relay waits through a broker restart with the same producer (no renewal, no replay)."""
    from shared_events.admin import create_topics
    from shared_events.kafka_server import KafkaCluster

    broker = KafkaCluster(data_dir=tmp_path / "kafka")
    broker.start()
    for name, value in broker.client_env().items():  # its address and its own admin login
        monkeypatch.setenv(name, value)
    stop = threading.Event()
    try:
        create_topics()
        relay = OutboxRelay(stop=stop)
        before = _publish("same-key")
        assert relay.publish_batch() == 1
        producer = relay.producer
        broker.stop()
        after = _publish("same-key")
        with running(relay.run, stop):
            broker.start()
            wait_for(
                lambda: OutboxEvent.objects.filter(event_id=after.id, sent_at__isnull=False).exists(),
                timeout=60,
                message="the row written while the broker was down, published after its restart",
            )
        assert relay._producer is producer, "the same idempotent producer carried on"
        messages = read_topic(topic_name(REQUESTED), 2)
        assert [parse_event(m.value()).id for m in messages] == [before.id, after.id]
        assert [m.offset() for m in messages] == [0, 1], "the log survived the restart"
    finally:
        stop.set()
        broker.stop()
