"""The broker refuses the unauthenticated and enforces the registry's ACLs: a real Apache Kafka, no mocks.

The broker is the one ``make test`` (or the plugin) started, secured as in production:
SASL/SCRAM-SHA-512 and the StandardAuthorizer. Each test gives the principals fresh
random passwords and the ACLs for its own topics (``KAFKA_TOPIC_PREFIX``) with
``shared_events.access.apply_access``, as ``manage.py kafka_access`` does in a deployment,
then logs in as each principal the way the services do.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from shared_events.access import KAFKADROP_GROUPS, PRINCIPALS, READ_ONLY, apply_access, consumer_group
from shared_events.kafka_config import admin_config, producer_config
from shared_events.kafka_server import sasl_client_config
from shared_events.topics import APPROVED, DLQ_SERVICES, REQUESTED, TOPICS, dlq_topic, topic_name

DEADLINE = 20.0


@pytest.fixture(autouse=True)
def secured_broker(kafka_bootstrap: str) -> None:
    if os.environ.get("KAFKA_SECURITY_PROTOCOL", "").upper() != "SASL_PLAINTEXT":
        pytest.skip("needs a secured broker, as make test starts (KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT)")


# ------------------------------------------------------------------ the contract's table

# The "Topics" tables of the event contract (shared/design/events.md; the traceability topics of
# docs/events.md), copied here on purpose:
# the broker's answers are checked against the contract, not against the registry the ACLs
# were derived from. The DLQ row: each service writes and replays its own dlq.<service>.
CONTRACT = {
    "hospital.blood.requested": ("hospital", {"bloodbank", "notification"}),
    "hospital.blood.cancelled": ("hospital", {"bloodbank", "notification"}),
    "bloodbank.blood.approved": ("bloodbank", {"hospital", "notification"}),
    "bloodbank.blood.rejected": ("bloodbank", {"hospital", "notification"}),
    "bloodbank.allocation.released": ("bloodbank", {"hospital", "notification"}),
    "bloodbank.inventory.updated": ("bloodbank", {"hospital", "notification"}),
    "bloodbank.inventory.low_stock": ("bloodbank", {"hospital", "notification"}),
    "notification.delivered": ("notification", set()),  # (audit, ops)
    "bloodbank.units.dispatched": ("bloodbank", {"hospital", "notification"}),
    "hospital.units.received": ("hospital", {"bloodbank", "notification"}),
    "hospital.unit.fate": ("hospital", {"bloodbank", "notification"}),
    "bloodbank.fate.overdue": ("bloodbank", {"notification"}),
    "bloodbank.recall.issued": ("bloodbank", {"hospital", "notification"}),
    "hospital.recall.acknowledged": ("hospital", {"bloodbank", "notification"}),
    "hospital.mtp.pack_requested": ("hospital", {"bloodbank", "notification"}),
    "hospital.mtp.stopped": ("hospital", {"bloodbank", "notification"}),
}


def expected_writes(principal: str) -> set[str]:
    own = {name for name, (producer, _) in CONTRACT.items() if producer == principal}
    return {topic_name(name) for name in own} | ({dlq_topic(principal)} if principal in DLQ_SERVICES else set())


def expected_reads(principal: str) -> set[str]:
    if principal == READ_ONLY:
        return every_topic()
    consumed = {name for name, (_, consumers) in CONTRACT.items() if principal in consumers}
    return {topic_name(name) for name in consumed} | {dlq_topic(principal)}


def own_groups(principal: str) -> str:
    """The prefix of the consumer groups ``principal`` may use."""
    return KAFKADROP_GROUPS if principal == READ_ONLY else consumer_group(principal)


def every_topic() -> set[str]:
    return {topic_name(name) for name in TOPICS} | {dlq_topic(service) for service in DLQ_SERVICES}


def test_the_registry_names_the_producers_and_consumers_of_the_contract():
    registry = {name: (spec.producer, set(spec.consumers)) for name, spec in TOPICS.items()}
    assert registry == CONTRACT


# ------------------------------------------------------------------ clients


@pytest.fixture
def passwords(kafka_topics: str) -> dict[str, str]:
    """Every principal with a fresh random password, and the ACLs for this test's topics."""
    chosen = {principal: secrets.token_urlsafe(24) for principal in PRINCIPALS}
    apply_access(chosen)
    return chosen


def login(principal: str, password: str, **extra: Any) -> dict[str, Any]:
    return (
        {"bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"]} | sasl_client_config(principal, password) | extra
    )


def unauthenticated(**extra: Any) -> dict[str, Any]:
    return {"bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"], "security.protocol": "PLAINTEXT"} | extra


def produce(config: dict[str, Any], topic: str) -> KafkaError | None:
    """Send one message; the delivery report's error (None: written)."""
    outcome: list[KafkaError | None] = []
    producer = Producer(config | {"message.timeout.ms": 8000})
    producer.produce(topic, key=b"probe", value=b"probe", on_delivery=lambda err, _msg: outcome.append(err))
    producer.flush(DEADLINE)
    assert outcome, f"no delivery report for {topic} in {DEADLINE}s"
    return outcome[0]


def produce_everywhere(config: dict[str, Any]) -> dict[str, KafkaError | None]:
    """One message to every topic with one producer: ``{topic: delivery error or None}``."""
    outcome: dict[str, KafkaError | None] = {}
    producer = Producer(config | {"message.timeout.ms": 8000})
    for topic in sorted(every_topic()):
        producer.produce(topic, value=b"probe", on_delivery=lambda err, msg: outcome.__setitem__(msg.topic(), err))
    producer.flush(DEADLINE)
    assert set(outcome) == every_topic(), "a delivery report is missing"
    return outcome


def answers(config: dict[str, Any], topics: set[str]) -> dict[str, int]:
    """Subscribe to ``topics`` with the config's group: ``{topic: 0 for a message, else its error's code}``.

    A topic the principal may not read comes back as a consumer error naming it (its messages never do).
    """
    consumer = Consumer(config | {"enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.subscribe(sorted(topics))
    outcome: dict[str, int] = {}
    deadline = time.monotonic() + 2 * DEADLINE
    try:
        while set(outcome) != topics and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.topic() in topics:
                outcome.setdefault(msg.topic(), msg.error().code() if msg.error() else 0)
    finally:
        consumer.close()
    assert set(outcome) == topics, f"neither a message nor an error from {sorted(topics - set(outcome))}"
    return outcome


def first_answer(config: dict[str, Any], topic: str) -> int:
    """Subscribe with the config's group and poll: 0 for a message, else the first error's code."""
    consumer = Consumer(config | {"enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    deadline = time.monotonic() + DEADLINE
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None:
                return msg.error().code() if msg.error() else 0
    finally:
        consumer.close()
    pytest.fail(f"neither a message nor an error from {topic} in {DEADLINE}s")


def refusals(client: AdminClient, errors: list[KafkaError]) -> set[int]:
    """The codes of the errors ``client`` reports (its error callback, served by ``poll``) within the deadline."""
    deadline = time.monotonic() + DEADLINE
    while not errors and time.monotonic() < deadline:
        client.poll(0.2)
    return {error.code() for error in errors}


def admin_sends_one_to_every_topic() -> None:
    failed: list[KafkaError] = []
    producer = Producer(producer_config())
    for topic in every_topic():
        producer.produce(topic, value=b"seed", on_delivery=lambda err, _msg: err and failed.append(err))
    assert producer.flush(60) == 0 and not failed, failed


def high_watermark(topic: str) -> int:
    consumer = Consumer(admin_config() | {"group.id": f"watermark-{uuid.uuid4().hex[:8]}"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        consumer.close()


# ------------------------------------------------------------------ refused at the door


def test_an_unauthenticated_client_can_neither_list_topics_nor_produce(kafka_topics):
    errors: list[KafkaError] = []
    client = AdminClient(unauthenticated(error_cb=errors.append))
    with pytest.raises(KafkaException):
        client.list_topics(timeout=5)
    assert refusals(client, errors) & {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}, errors

    refused = produce(unauthenticated(), topic_name(REQUESTED))
    assert refused is not None and refused.code() == KafkaError._MSG_TIMED_OUT
    assert high_watermark(topic_name(REQUESTED)) == 0  # nothing got in


def test_an_unauthenticated_consumer_reads_nothing(kafka_topics):
    admin_sends_one_to_every_topic()
    errors: list[KafkaError] = []
    consumer = Consumer(unauthenticated(**{"group.id": f"anonymous-{uuid.uuid4().hex[:8]}", "error_cb": errors.append}))
    consumer.assign([TopicPartition(topic_name(REQUESTED), 0, OFFSET_BEGINNING)])
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            assert msg is None or msg.error(), "an unauthenticated consumer got a message"
    finally:
        consumer.close()
    assert any(e.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN) for e in errors), errors


def test_a_wrong_password_is_refused(passwords):
    errors: list[KafkaError] = []
    client = AdminClient(login("hospital", passwords["hospital"] + "-wrong", error_cb=errors.append))
    with pytest.raises(KafkaException):
        client.list_topics(timeout=5)
    assert KafkaError._AUTHENTICATION in refusals(client, errors), errors


def test_a_user_without_a_scram_credential_is_refused(passwords):
    errors: list[KafkaError] = []
    client = AdminClient(login("intruder", passwords["hospital"], error_cb=errors.append))
    with pytest.raises(KafkaException):
        client.list_topics(timeout=5)
    assert KafkaError._AUTHENTICATION in refusals(client, errors), errors


# ------------------------------------------------------------------ what each principal may do


def test_the_hospital_cannot_write_bloodbank_blood_approved(passwords):
    # The service's own producer settings (idempotent, acks=all), logged in as the hospital.
    hospital = producer_config() | login("hospital", passwords["hospital"])
    refused = produce(hospital, topic_name(APPROVED))
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, refused
    assert high_watermark(topic_name(APPROVED)) == 0
    assert produce(hospital, topic_name(REQUESTED)) is None  # its own topic: written


def test_the_blood_bank_writes_approved_and_the_hospital_reads_it(passwords):
    bank = producer_config() | login("bloodbank", passwords["bloodbank"])
    assert produce(bank, topic_name(APPROVED)) is None
    group = f"{consumer_group('hospital')}-test-{uuid.uuid4().hex[:8]}"
    assert first_answer(login("hospital", passwords["hospital"], **{"group.id": group}), topic_name(APPROVED)) == 0


@pytest.mark.parametrize("topic", [REQUESTED, "notification.delivered", "dlq.bloodbank"])
def test_the_hospital_cannot_read_what_it_does_not_consume(passwords, topic):
    admin_sends_one_to_every_topic()
    name = dlq_topic("bloodbank") if topic.startswith("dlq.") else topic_name(topic)
    config = login("hospital", passwords["hospital"], **{"group.id": consumer_group("hospital")})
    assert first_answer(config, name) == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_a_service_cannot_use_another_services_consumer_group(passwords):
    admin_sends_one_to_every_topic()
    config = login("hospital", passwords["hospital"], **{"group.id": consumer_group("bloodbank")})
    assert first_answer(config, topic_name(APPROVED)) == KafkaError.GROUP_AUTHORIZATION_FAILED


def test_kafkadrop_reads_but_cannot_write(passwords):
    admin_sends_one_to_every_topic()
    kafkadrop = login(READ_ONLY, passwords[READ_ONLY])
    assert first_answer(kafkadrop | {"group.id": f"kafdrop-test-{uuid.uuid4().hex[:8]}"}, topic_name(APPROVED)) == 0
    refused = produce(kafkadrop | {"enable.idempotence": False}, topic_name(APPROVED))
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_each_principal_writes_and_reads_exactly_what_the_contract_gives_it(passwords, principal):
    """The whole matrix: every topic, written and read by each principal, against the contract's table."""
    admin_sends_one_to_every_topic()
    config = login(principal, passwords[principal])
    written = produce_everywhere(config | {"enable.idempotence": False, "acks": "all"})
    assert {topic for topic, error in written.items() if error is None} == expected_writes(principal)
    denied = {error.code() for error in written.values() if error is not None}
    assert denied <= {KafkaError.TOPIC_AUTHORIZATION_FAILED}, denied

    read = answers(config | {"group.id": f"{own_groups(principal)}-matrix-{uuid.uuid4().hex[:8]}"}, every_topic())
    assert {topic for topic, code in read.items() if code == 0} == expected_reads(principal)
    assert set(read.values()) <= {0, KafkaError.TOPIC_AUTHORIZATION_FAILED}, read
