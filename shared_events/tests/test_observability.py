"""Metrics, correlation ids in logs, and the worker's heartbeat, against the real broker and PostgreSQL."""

import io
import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import Client
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from shared_events.django.heartbeat import Heartbeat, check
from shared_events.django.logging import CorrelationIdFilter, JsonFormatter, correlation
from shared_events.django.metrics import process_identifier
from shared_events.django.models import OutboxEvent
from shared_events.django.outbox import enqueue_message, publish
from shared_events.django.relay import OutboxRelay
from shared_events.django.service_settings import log_format
from shared_events.kafka_config import producer_config
from shared_events.kafka_server import free_port
from shared_events.testing import metric_value, read_topic, requested_payload, running, wait_for
from shared_events.topics import dlq_topic, topic_name
from tests.testapp.models import Effect
from tests.worker_process import WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True)

REQUESTED = "hospital.blood.requested"
PROJECT = Path(__file__).resolve().parent.parent


def _publish(subject: str, correlation_id: str | None = None):
    with transaction.atomic():
        return publish(REQUESTED, requested_payload(), subject=subject, correlation_id=correlation_id)


def _scrape() -> str:
    response = Client().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


@contextmanager
def _captured_logs() -> Iterator[io.StringIO]:
    """Root log lines as production writes them: the correlation filter and the JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(CorrelationIdFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


# -- /metrics -----------------------------------------------------------------------
def test_metrics_count_published_consumed_duplicate_failed_and_dead_lettered_events(make_consumer):
    requested, dlq = topic_name(REQUESTED), dlq_topic("hospital")
    first = _publish("m-1")
    _publish("m-2")
    row = OutboxEvent.objects.get(event_id=first.id)
    enqueue_message(topic=row.topic, key="m-1", value=bytes(row.value), headers={}, event_type=REQUESTED)  # a copy
    _publish("always-fails")
    producer = Producer(producer_config())
    producer.produce(requested, key="poison", value=b"{not an event")
    assert producer.flush(10) == 0

    relay_stop, consumer = threading.Event(), make_consumer()
    with running(OutboxRelay(stop=relay_stop).run, relay_stop), running(consumer.run, consumer.stop):
        wait_for(lambda: Effect.objects.filter(subject__in=["m-1", "m-2"]).count() == 2, message="both handled")
        wait_for(
            lambda: OutboxEvent.objects.filter(topic=dlq, sent_at__isnull=False).count() == 2,
            message="both dead letters published",
        )
        wait_for(
            lambda: metric_value(_scrape(), "events_consumed_total", topic=requested) == 5,
            message="all five messages finished",
        )
        # Lag is refreshed about every second, per assigned partition (its value is not asserted:
        # see "The embedded broker" in docs/architecture.md).
        wait_for(lambda: metric_value(_scrape(), "kafka_consumer_lag", topic=requested) is not None, message="lag")
        text = _scrape()

    assert metric_value(text, "events_published_total", topic=requested) == 4  # m-1, m-2, the copy, always-fails
    assert metric_value(text, "events_published_total", topic=dlq) == 2
    assert metric_value(text, "events_consumed_total", topic=requested, outcome="handled") == 2
    assert metric_value(text, "events_consumed_total", topic=requested, outcome="duplicate") == 1
    assert metric_value(text, "events_consumed_total", topic=requested, outcome="dead_lettered") == 2
    assert metric_value(text, "event_handler_failures_total", topic=requested) == 3  # max_attempts
    assert metric_value(text, "events_dead_lettered_total", topic=requested, reason="invalid") == 1
    assert metric_value(text, "events_dead_lettered_total", topic=requested, reason="handler_failed") == 1
    assert metric_value(text, "outbox_pending_events") == 0
    assert metric_value(text, "outbox_oldest_pending_age_seconds") == 0


def test_metrics_show_the_outbox_backlog_and_the_age_of_its_oldest_row():
    first = _publish("waiting-1")
    _publish("waiting-2")
    OutboxEvent.objects.filter(event_id=first.id).update(created_at=timezone.now() - timedelta(hours=1))

    text = _scrape()

    assert metric_value(text, "outbox_pending_events") == 2
    assert 3600 <= metric_value(text, "outbox_oldest_pending_age_seconds") < 3660


def test_http_latency_is_labelled_by_route_name_not_raw_path():
    client = Client()
    before = metric_value(_scrape(), "http_request_duration_seconds_count", route="healthz", status="200") or 0
    assert client.get("/healthz").status_code == 200
    assert client.get(f"/no-such-page/{uuid.uuid4()}").status_code == 404

    text = _scrape()

    assert metric_value(text, "http_request_duration_seconds_count", method="GET", route="healthz", status="200") == (
        before + 1
    )
    assert metric_value(text, "http_request_duration_seconds_count", route="<unmatched>", status="404") >= 1
    assert "no-such-page" not in text


# -- correlation ids ------------------------------------------------------------------
def test_a_web_request_echoes_its_correlation_id_and_logs_under_it():
    with _captured_logs() as logs:
        response = Client().get("/nope", HTTP_X_CORRELATION_ID="web-4411")
    assert response.status_code == 404
    assert response["X-Correlation-ID"] == "web-4411"
    (not_found,) = [line for line in _lines(logs) if line["logger"] == "django.request"]
    assert not_found["correlationid"] == "web-4411"


def test_a_web_request_without_a_usable_correlation_id_gets_a_new_one():
    plain = Client().get("/healthz")["X-Correlation-ID"]
    hostile = Client().get("/healthz", HTTP_X_CORRELATION_ID="x\r\nSet-Cookie: a=b " * 20)["X-Correlation-ID"]
    assert len(plain) == 32 and int(plain, 16) >= 0
    assert len(hostile) == 32 and hostile != plain


def test_the_consumer_logs_under_the_events_correlation_id(make_consumer):
    _publish("always-fails", correlation_id="chain-77")
    relay_stop, consumer = threading.Event(), make_consumer(max_attempts=2)
    relay = OutboxRelay(stop=relay_stop)
    with _captured_logs() as logs, running(relay.run, relay_stop), running(consumer.run, consumer.stop):
        read_topic(dlq_topic("hospital"), 1)
    failures = [line for line in _lines(logs) if line["message"].startswith("handler failed")]
    letters = [line for line in _lines(logs) if line["message"].startswith("dead-lettered")]
    assert len(failures) == 2 and len(letters) == 1, _lines(logs)
    assert {line["correlationid"] for line in failures + letters} == {"chain-77"}
    unrelated = [line for line in _lines(logs) if "subscribed to" in line["message"]]
    assert unrelated and unrelated[0]["correlationid"] == "-"


def test_the_relay_logs_an_unconfirmed_row_under_its_correlation_id(kafka_topics):
    _publish("unconfirmed", correlation_id="chain-88")
    dead_broker = {"bootstrap.servers": f"127.0.0.1:{free_port()}", "message.timeout.ms": 1000}
    with _captured_logs() as logs:
        assert OutboxRelay(stop=threading.Event(), producer_overrides=dead_broker).publish_batch() == -1
    (line,) = [line for line in _lines(logs) if "not confirmed:" in line["message"]]
    assert line["correlationid"] == "chain-88"


def test_plain_lines_show_the_correlation_id_and_json_is_the_default_without_debug(monkeypatch):
    from shared_events.django.logging import PLAIN_FORMAT

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    with correlation("plain-1"):
        CorrelationIdFilter().filter(record)
    assert "[plain-1] hello" in logging.Formatter(PLAIN_FORMAT).format(record)

    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert log_format(debug=False) == "json"
    assert log_format(debug=True) == "plain"
    monkeypatch.setenv("LOG_FORMAT", "yaml")
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT must be json or plain"):
        log_format(debug=False)


# -- the worker's heartbeat ----------------------------------------------------------
def test_worker_health_passes_on_a_fresh_heartbeat_and_fails_on_a_stale_or_missing_one(tmp_path):
    path = tmp_path / "hb"
    out = io.StringIO()
    Heartbeat(path).beat()
    call_command("worker_health", "--file", str(path), stdout=out)
    assert "worker healthy" in out.getvalue()

    os.utime(path, (path.stat().st_atime, path.stat().st_mtime - 45))
    with pytest.raises(CommandError, match=r"last heartbeat 4\d\.\ds ago, older than 30s") as stale:
        call_command("worker_health", "--file", str(path), "--max-age", "30")
    assert stale.value.returncode == 1

    path.unlink()
    assert check(path, 30) == (False, f"no heartbeat file at {path} (worker not started, stopped, or never healthy)")


def test_an_unhealthy_worker_withholds_its_heartbeat(tmp_path):
    path = tmp_path / "hb"
    Heartbeat(path, problem=lambda: "the outbox relay thread has stopped").beat()
    assert not path.exists()


def _worker_health(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "worker_health"],
        cwd=PROJECT,
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_real_worker_beats_writes_multiprocess_metrics_and_logs_json(kafka_topics, tmp_path):
    """One worker process: heartbeat while running, none after SIGTERM; its figures in the shared metrics dir."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        "WORKER_HEARTBEAT_FILE": str(tmp_path / "worker.heartbeat"),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "LOG_FORMAT": "json",
        "KAFKA_CONFIG_GROUP_ID": f"observe-{uuid.uuid4().hex[:8]}",
        "PYTHONUNBUFFERED": "1",
    }
    assert _worker_health(env).returncode == 1  # not started yet
    _publish("from-the-worker", correlation_id="chain-99")
    _publish("always-fails", correlation_id="chain-100")
    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        wait_for(lambda: _worker_health(env).returncode == 0, timeout=60, message="a fresh heartbeat")
        wait_for(lambda: Effect.objects.filter(subject="from-the-worker").exists(), timeout=60, message="handled")
        read_topic(dlq_topic("hospital"), 1, timeout=60)
        lag_file = metrics_dir / f"gauge_livemax_{process_identifier(worker.pid)}.db"  # named by host and pid
        wait_for(lag_file.exists, timeout=30, message="the worker's consumer-lag gauge")
        assert worker.stop() == 0, worker.output
    finally:
        worker.kill()
    output = worker.output

    stopped = _worker_health(env)
    assert stopped.returncode == 1
    assert "no heartbeat file" in stopped.stderr

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))
    text = generate_latest(registry).decode()
    requested = topic_name(REQUESTED)
    assert metric_value(text, "events_published_total", topic=requested) == 2
    assert metric_value(text, "events_consumed_total", topic=requested, outcome="handled") == 1
    assert metric_value(text, "events_consumed_total", topic=requested, outcome="dead_lettered") == 1
    assert not lag_file.exists()  # a live gauge: the worker marked itself dead on the way out
    assert metric_value(text, "kafka_consumer_lag") is None

    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert lines and len(lines) == len(output.splitlines()), output  # every line is one JSON object
    failures = [line for line in lines if "handler failed" in line["message"]]
    assert failures and {line["correlationid"] for line in failures} == {"chain-100"}
