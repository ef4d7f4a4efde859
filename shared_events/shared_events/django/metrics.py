"""Every shared Prometheus metric, and the one way to serve them.

A service runs web processes (gunicorn workers) and a separate worker process
(consumer + relay). With ``PROMETHEUS_MULTIPROC_DIR`` set, every process of a
service writes its figures to files in that directory (prometheus_client's
multiprocess mode) and ``/metrics`` of any web process adds them up; without
it, the process's own default registry is served. The outbox gauges are read
from the database at scrape time, so every process agrees on them.

Recording is one call per event from the consumer and the relay (a counter
increment: no database query, no I/O beyond the multiprocess mmap).
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from typing import Any

from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


# The web and the worker of a service may be separate containers sharing the directory,
# each with its own pid 1, 7, ...: files are named by host and pid, not pid alone.
# (No "_" in it: prometheus_client splits file names on "_".)
_HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "host"


def process_identifier(pid: int | None = None) -> str:
    return f"{_HOST}-{pid if pid is not None else os.getpid()}"


if multiprocess_dir():
    # Before any metric is made: they read values.ValueClass when created.
    values.ValueClass = values.MultiProcessValue(process_identifier)

# Seconds from a request's creation to its decision: the bank decides in milliseconds,
# a request that waited for the watchdog or a worker restart takes minutes.
DECISION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800)

HTTP_REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by method, URL name (not the raw path) and status code.",
    ["method", "route", "status"],
)
EVENTS_PUBLISHED = Counter(
    "events_published", "Events the relay published, counted on the broker's delivery confirmation.", ["topic"]
)
EVENTS_CONSUMED = Counter(
    "events_consumed",
    "Events the consumer finished, by outcome: handled, duplicate, dead_lettered.",
    ["topic", "outcome"],
)
HANDLER_FAILURES = Counter(
    "event_handler_failures", "Handler attempts that raised (each retry counts; a database outage does not).", ["topic"]
)
DEAD_LETTERS = Counter(
    "events_dead_lettered",
    "Messages sent to the dead-letter topic, by source topic and reason: invalid (unreadable, unknown type, "
    "no handler) or handler_failed (after the retries).",
    ["topic", "reason"],
)
CONSUMER_LAG = Gauge(
    "kafka_consumer_lag",
    "Messages behind the partition's high watermark, per assigned partition (refreshed about every second).",
    ["topic", "partition"],
    multiprocess_mode="livemax",
)

_LAG_REFRESH_SECONDS = 1.0


def mark_process_dead(pid: int) -> None:
    """Drop a dead process's live gauges (gunicorn's ``child_exit`` hook, the worker on exit)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(process_identifier(pid))


# -- recording (one call per event) -------------------------------------------------
def events_consumed(outcomes: Iterable[tuple[str, str]]) -> None:
    """Count finished events, given ``(topic, outcome)`` pairs."""
    for (topic, outcome), n in Tally(outcomes).items():
        EVENTS_CONSUMED.labels(topic, outcome).inc(n)


def events_published(topics: Iterable[str]) -> None:
    for topic, n in Tally(topics).items():
        EVENTS_PUBLISHED.labels(topic).inc(n)


def handler_failed(topic: str) -> None:
    HANDLER_FAILURES.labels(topic).inc()


def dead_lettered(topic: str, *, invalid: bool) -> None:
    DEAD_LETTERS.labels(topic, "invalid" if invalid else "handler_failed").inc()
    EVENTS_CONSUMED.labels(topic, "dead_lettered").inc()


def seconds_since(moment: Any) -> float:
    """Seconds from ``moment`` (an aware datetime) to now; never negative (clocks of two hosts differ)."""
    return max((timezone.now() - moment).total_seconds(), 0.0)


class LagReporter:
    """The consumer's lag per partition: high watermark minus position, from the client's cache.

    ``get_watermark_offsets(cached=True)`` reads what the last fetch response
    said, so a refresh costs no broker round trip.
    """

    def __init__(self, interval: float = _LAG_REFRESH_SECONDS) -> None:
        self.interval = interval
        self._next = 0.0

    def maybe_update(self, consumer: Any) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval
        for tp in consumer.position(consumer.assignment()):
            if tp.offset < 0:
                continue  # nothing consumed yet on this partition: position unknown
            _low, high = consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0:
                CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(high - tp.offset, 0))

    def forget(self, partitions: Iterable[Any]) -> None:
        """Partitions revoked from this member: its figure drops to 0 (the new owner reports the real one)."""
        for tp in partitions:
            CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(0)


# -- serving -----------------------------------------------------------------------
class OutboxCollector:
    """Backlog and age of the oldest unsent outbox row, read from the database at scrape time."""

    def collect(self) -> Iterator[Metric]:
        from shared_events.django.models import OutboxEvent

        try:
            unsent = OutboxEvent.objects.filter(sent_at__isnull=True)
            pending = unsent.aggregate(n=Count("id"), oldest=Min("created_at"))
        except DatabaseError:
            return  # /readyz reports the database; the process figures are still served
        yield GaugeMetricFamily(
            "outbox_pending_events", "Outbox rows not yet confirmed by the broker.", value=pending["n"]
        )
        yield GaugeMetricFamily(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox row not yet confirmed (0 when none is pending).",
            value=seconds_since(pending["oldest"]) if pending["oldest"] else 0.0,
        )


class _Forward:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        return self.registry.collect()


def render() -> bytes:
    """The Prometheus text of this service: every process's figures plus the outbox gauges."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Forward(REGISTRY))
    registry.register(OutboxCollector())
    return generate_latest(registry)
