"""pytest plugin shared by every suite: a real broker, isolated topics, waiting helpers.

Enable it with ``pytest_plugins = ["shared_events.testing"]``. When
``KAFKA_BOOTSTRAP_SERVERS`` is set (``make test`` starts one Apache Kafka node
for the whole run) that broker is used; otherwise the session starts its own.
Either way the broker is secured (SASL/SCRAM, ACLs) and the tests' own clients
(``read_topic``, ``create_topics``, raw producers) log in as its ``admin``
(``KAFKA_SASL_USERNAME``/``KAFKA_SASL_PASSWORD``, set by the launcher).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from confluent_kafka import Consumer, Message

from shared_events.access_probe import OPEN_OPERATIONS
from shared_events.admin import create_topics
from shared_events.kafka_config import consumer_config
from shared_events.kafka_server import KafkaCluster

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright never downloads a browser here
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",  # the closed network refuses these connections
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium driven by Playwright (sync API); closed on exit."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"Debian's chromium is needed at {CHROMIUM} (apt-get install chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def token_for(user: Any) -> str:
    """A new API token of ``user`` (django-rest-knox), as ``POST /api/v1/auth/token/`` issues one."""
    from knox.models import AuthToken

    return AuthToken.objects.create(user=user)[1]


def requested_payload(**overrides: Any) -> dict[str, Any]:
    """A valid ``hospital.blood.requested`` payload: EMERGENCY, 2 units O+ red cells (SCHEDULED gets ``needed_by``)."""
    now = datetime.now(UTC)
    payload: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "hospital_id": str(uuid.uuid4()),
        "hospital_name": "St Mary's Hospital",
        "blood_group": "O+",
        "component": "RED_CELLS",
        "units": 2,
        "priority": "EMERGENCY",
        "allow_partial": True,
        "requested_by": "stmary_staff",
        "requested_at": now.isoformat(),
    }
    if overrides.get("priority") == "SCHEDULED":
        payload["allow_partial"] = False
        payload["needed_by"] = (now + timedelta(days=2)).isoformat()
    return payload | overrides


def refused_bodies(valid: dict[str, Any]) -> list[Any]:
    """Request bodies every API refuses, as ``pytest.param(body, status)``: ``valid`` padded past 64 KiB (413),
    and JSON nested 40 and 20,000 levels deep in under 64 KiB (400; the limit is 32; the standard library
    parser would give up with a RecursionError at about 1,000).
    """
    oversized = json.dumps(valid | {"padding": "x" * 70_000}).encode()
    return [
        pytest.param(oversized, 413, id="over-64KiB"),
        pytest.param(b"[" * 40 + b"]" * 40, 400, id="nested-40"),
        pytest.param(b"[" * 20_000 + b"]" * 20_000, 400, id="nested-20000"),
    ]


@contextmanager
def wsgi_in_test_transaction() -> Iterator[None]:
    """Let a real WSGI app (e.g. for schemathesis' ``from_wsgi``) run in the test's database transaction.

    A WSGI request closes the database connection when it starts and ends; Django's test client
    disconnects that for its own requests, and this does the same around the block.
    """
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


HUGE_EVENT_BYTES = 950_000
"""A huge message the producer and broker still carry (librdkafka's ``message.max.bytes`` default is
1,000,000); its dead letter keeps the first ``DLQ_MAX_VALUE_BYTES`` of it."""
TOO_BIG_EVENT_BYTES = 2_000_000
"""A message the producer refuses before sending (``MSG_SIZE_TOO_LARGE``)."""


def malformed_events(event_type: str) -> list[tuple[str, bytes]]:
    """(label, message value) pairs every consumer of ``event_type``'s topic must dead-letter."""
    from shared_events.topics import TOPICS

    def envelope(type_: str = event_type, major: int = 1, data: dict[str, Any] | None = None) -> bytes:
        return json.dumps(
            {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "source": "malformed-test",
                "type": type_,
                "subject": "malformed",
                "time": datetime.now(UTC).isoformat(),
                "datacontenttype": "application/json",
                "dataschema": f"urn:bloodbank:event:{type_}:v{major}",
                "correlationid": "malformed",
                "data": data or {},
            }
        ).encode()

    other = next(name for name in TOPICS if name != event_type)
    return [
        ("not-json", b"{this is not JSON"),
        ("wrong-type", envelope(other)),
        ("missing-fields", envelope()),
        ("unknown-major", envelope(major=TOPICS[event_type].latest_major + 1)),
        ("huge", envelope(data={"padding": "x" * HUGE_EVENT_BYTES})),
    ]


def assert_malformed_events_dead_lettered(*, service: str, handlers: dict[str, Any], valid: Any) -> None:
    """Send ``malformed_events`` on every topic ``handlers`` consume, then the ``valid`` event (an ``Event``); run a
    real consumer and relay: each malformed one must land in ``dlq.<service>`` with its ``dlq_*`` headers,
    and ``valid`` (sent last) must be handled. A message over 1 MB is refused by the producer itself.
    """
    from confluent_kafka import KafkaError, KafkaException, Producer

    from shared_events.django.consumer import DLQ_MAX_VALUE_BYTES, EventConsumer
    from shared_events.django.models import InboxEvent
    from shared_events.django.relay import OutboxRelay
    from shared_events.kafka_config import producer_config
    from shared_events.topics import dlq_topic, topic_name

    producer = Producer(producer_config())
    sent = set()
    for event_type in sorted(handlers):
        for label, value in malformed_events(event_type):
            producer.produce(topic_name(event_type), key=label, value=value)
            sent.add((topic_name(event_type), label))
    with pytest.raises(KafkaException) as refused:
        producer.produce(topic_name(valid.type), key="too-big", value=b"x" * TOO_BIG_EVENT_BYTES)
    assert refused.value.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    producer.produce(topic_name(valid.type), key=valid.subject, value=valid.envelope.to_bytes())
    assert producer.flush(30) == 0

    consumer = EventConsumer(
        handlers=handlers, stop=threading.Event(), group_id=f"malformed-{uuid.uuid4().hex[:8]}", retry_backoff=0.01
    )
    relay_stop = threading.Event()
    with running(OutboxRelay(stop=relay_stop).run, relay_stop), running(consumer.run, consumer.stop):
        wait_for(
            lambda: InboxEvent.objects.filter(event_id=valid.id, outcome="HANDLED").exists(),
            timeout=60,
            message="the valid event sent after the malformed ones",
        )
        letters = read_topic(dlq_topic(service), len(sent), timeout=60)
    assert {(dict(m.headers())["dlq_original_topic"].decode(), m.key().decode()) for m in letters} == sent
    for letter in letters:
        headers = dict(letter.headers())
        assert {"dlq_error", "dlq_original_partition", "dlq_original_offset", "dlq_failed_at"} <= set(headers)
        assert headers["dlq_consumer_group"] == consumer.group_id.encode()
        if letter.key() == b"wrong-type":
            assert b"does not belong on topic" in headers["dlq_error"]
        if letter.key() == b"huge":
            assert int(headers["dlq_value_truncated_from"]) > HUGE_EVENT_BYTES
            assert len(letter.value()) == DLQ_MAX_VALUE_BYTES


def served_schema() -> dict[str, Any]:
    """The OpenAPI schema the service serves at ``/api/schema/`` (public: the contract, not the data)."""
    from rest_framework.test import APIClient

    response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200, response.content
    return response.json()


def token_scheme_problems(schema: dict[str, Any]) -> list[str]:
    """What keeps Swagger UI's Authorize from working with the token login; ``[]`` when nothing."""
    token_auth = schema["components"]["securitySchemes"].get("tokenAuth", {})
    problems = []
    if (token_auth.get("type"), token_auth.get("in"), token_auth.get("name")) != ("apiKey", "header", "Authorization"):
        problems.append(f"tokenAuth is not the Authorization header: {token_auth}")
    for hint in ("POST /api/v1/auth/token/", "Token <key>"):
        if hint not in token_auth.get("description", ""):
            problems.append(f"tokenAuth's description does not say {hint!r}")
    if schema["paths"]["/api/v1/auth/token/"]["post"].get("security") != []:
        problems.append("logging in does not say it needs no credentials (security: [])")
    return problems


def undocumented_operations(schema: dict[str, Any]) -> list[str]:
    """What a service's OpenAPI schema leaves undocumented, one line per gap; ``[]`` when complete.

    Every operation needs a summary, a security requirement (except ``access_probe.OPEN_OPERATIONS``), an
    example for each request body media type, and one for its success response.
    """
    gaps = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            name = f"{method.upper()} {path}"
            if not operation.get("summary"):
                gaps.append(f"{name}: no summary")
            if name not in OPEN_OPERATIONS and not operation.get("security"):
                gaps.append(f"{name}: no security requirement")
            for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
                if not (media.get("example") or media.get("examples")):
                    gaps.append(f"{name}: no example for its {media_type} request body")
            success = [response for status, response in operation["responses"].items() if status.startswith("2")]
            for media_type, media in (success[0] if success else {}).get("content", {}).items():
                if not (media.get("example") or media.get("examples")):
                    gaps.append(f"{name}: no example for its {media_type} response")
    return gaps


def metric_value(text: str, name: str, **labels: str) -> float | None:
    """The sum of the samples called ``name`` whose labels include ``labels``, in Prometheus text; None if none.

    ``name`` is the sample's name: ``events_consumed_total``, ``http_request_duration_seconds_count``.
    """
    from prometheus_client.parser import text_string_to_metric_families

    values = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]
    return sum(values) if values else None


def wait_for(
    condition: Callable[[], T],
    *,
    timeout: float = 20.0,
    interval: float = 0.02,
    message: str | Callable[[], str] = "",
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds.

    ``message`` says what was awaited; a callable is asked at the failure (e.g. for what is still missing).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            said = message() if callable(message) else message
            pytest.fail(f"timed out after {timeout}s waiting for: {said or condition}")
        time.sleep(interval)


def read_topic(topic: str, count: int, *, timeout: float = 60.0) -> list[Message]:
    """Read ``count`` messages of ``topic`` from the beginning, with a fresh consumer group."""
    consumer = Consumer(consumer_config(f"test-reader-{uuid.uuid4()}", **{"enable.auto.commit": False}))
    consumer.subscribe([topic])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.1)
            if msg is not None and not msg.error():
                messages.append(msg)
    finally:
        consumer.close()
    if len(messages) < count:
        pytest.fail(f"read {len(messages)} of {count} messages from {topic} in {timeout}s")
    return messages


@contextmanager
def running(target: Callable[[], Any], stop: threading.Event) -> Iterator[threading.Thread]:
    """Run a worker loop (consumer or relay ``run``) in a thread for the block."""
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(timeout=20)
        assert not thread.is_alive(), "worker thread did not stop"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        return
    with tempfile.TemporaryDirectory(prefix="kafka-test-") as data:
        broker = KafkaCluster(data_dir=Path(data))
        broker.start()
        client_env = broker.client_env()  # the address and, as make test gives it, the admin login
        os.environ.update(client_env)
        try:
            yield broker.bootstrap_servers
        finally:
            broker.stop()
            for name in client_env:
                del os.environ[name]


@pytest.fixture
def kafka_topics(kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh set of every registry topic for this test (``KAFKA_TOPIC_PREFIX``)."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", prefix)
    create_topics()
    return prefix
