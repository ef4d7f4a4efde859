"""pytest plugin shared by every suite: a real broker, isolated topics, waiting helpers.

Enable it with ``pytest_plugins = ["shared_events.testing"]``. When
``KAFKA_BOOTSTRAP_SERVERS`` is set (``make test`` starts one broker for the
whole run) that broker is used; otherwise the session starts its own.
"""

from __future__ import annotations

import json
import os
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

from shared_events.admin import create_topics
from shared_events.embedded_broker import start_broker
from shared_events.kafka_config import consumer_config

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


OPEN_OPERATIONS = {("post", "/api/v1/auth/token/")}
"""Operations in a service's schema that need no credentials (health, schema and docs are not in it)."""


def undocumented_operations(schema: dict[str, Any]) -> list[str]:
    """What a service's OpenAPI schema leaves undocumented, one line per gap; ``[]`` when complete.

    Every operation needs a summary, a security requirement (except ``OPEN_OPERATIONS``), an
    example for each request body media type, and one for its success response.
    """
    gaps = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            name = f"{method.upper()} {path}"
            if not operation.get("summary"):
                gaps.append(f"{name}: no summary")
            if (method, path) not in OPEN_OPERATIONS and not operation.get("security"):
                gaps.append(f"{name}: no security requirement")
            for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
                if not (media.get("example") or media.get("examples")):
                    gaps.append(f"{name}: no example for its {media_type} request body")
            success = [response for status, response in operation["responses"].items() if status.startswith("2")]
            for media_type, media in (success[0] if success else {}).get("content", {}).items():
                if not (media.get("example") or media.get("examples")):
                    gaps.append(f"{name}: no example for its {media_type} response")
    return gaps


def wait_for(condition: Callable[[], T], *, timeout: float = 20.0, interval: float = 0.02, message: str = "") -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for: {message or condition}")
        time.sleep(interval)


def read_topic(topic: str, count: int, *, timeout: float = 20.0) -> list[Message]:
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
    broker = start_broker(0)
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
    os.environ["KAFKA_EMBEDDED"] = "1"
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()
        del os.environ["KAFKA_BOOTSTRAP_SERVERS"]


@pytest.fixture
def kafka_topics(kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh set of every registry topic for this test (``KAFKA_TOPIC_PREFIX``)."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", prefix)
    create_topics()
    return prefix
