"""The outbox relay: the one publisher of a service.

Exactly one relay per service publishes: on PostgreSQL it holds an advisory
lock (other replicas stand by and take over when it goes) and sleeps on
``LISTEN`` until a writing transaction commits; on SQLite it polls. Rows are
published in id order and marked sent only after the broker acknowledged them;
a row whose delivery was not confirmed stays pending and is sent again.

The mark of a round's confirmed rows rides on the next round's read when that
round comes within ``mark_within`` seconds (on PostgreSQL in one statement:
``WITH ... UPDATE`` then the ``SELECT`` of the rows still pending, the
just-confirmed ones left out); otherwise the mark goes on its own. Under load every
round then costs one statement instead of two (each its own transaction and
commit). Until marked, a confirmed row is sent again only if this relay stops
before marking it: the consumers' inboxes skip the copy, as they skip any
redelivery.

The producer is idempotent with ``acks=all``: librdkafka retries what the
brokers did not take (a leader moving, too few in-sync replicas) on its own
until ``message.timeout.ms``, keeping each partition's order, and the relay
waits for every delivery report of a batch before it reads the next one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import select
import threading
import time
import zlib
from functools import partial
from typing import Any, NamedTuple

from confluent_kafka import KafkaError, Producer
from django.db import close_old_connections, connection
from django.db.models import F
from django.utils import timezone

from shared_events.django import metrics
from shared_events.django.config import service_events
from shared_events.django.dedicated import dedicated_connection
from shared_events.django.logging import correlation
from shared_events.django.models import OutboxEvent
from shared_events.django.outbox import NOTIFY_CHANNEL
from shared_events.django.prepared import Prepared, execute
from shared_events.kafka_config import producer_config
from shared_events.wire import correlation_id

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        *,
        stop: threading.Event,
        producer_overrides: dict[str, Any] | None = None,
        batch_size: int = 500,
        poll_interval: float = 0.02,
        idle_wait: float = 1.0,
        standby_retry: float = 0.5,
        linger: float | None = None,
        mark_within: float = 0.1,
    ) -> None:
        self.stop = stop
        self.batch_size = batch_size
        self._pending = Prepared(lambda: OutboxEvent.objects.filter(sent_at__isnull=True).order_by("id")[:batch_size])
        self.poll_interval = poll_interval
        self.idle_wait = idle_wait
        self.standby_retry = standby_retry
        self.linger = service_events().relay_linger if linger is None else linger
        self.mark_within = mark_within
        self._confirmed: list[int] = []  # confirmed by the broker, not yet marked sent
        self.is_leader = threading.Event()
        self._producer_overrides = producer_overrides or {}
        self._producer: Producer | None = None
        self._lock_conn: Any = None
        self._failures = 0
        self.last_alive = time.monotonic()  # each turn of the loop, leading or standing by (the worker's heartbeat)

    # -- leadership --------------------------------------------------------
    @property
    def _lock_key(self) -> int:
        return zlib.crc32(f"outbox-relay:{service_events().service}".encode())

    def _try_lead(self) -> bool:
        if connection.vendor != "postgresql":
            return True  # SQLite: one worker per database (its writes are serialised anyway)
        if self._lock_conn is None:
            self._lock_conn = dedicated_connection()
        with self._lock_conn.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [self._lock_key])
            (acquired,) = cursor.fetchone()
            if acquired:
                cursor.execute(f"LISTEN {NOTIFY_CHANNEL}")
        return bool(acquired)

    def _wait_for_work(self, timeout: float) -> bool:
        """Wait until a commit notifies (True) or ``timeout`` passes (False)."""
        if self._lock_conn is None:
            self.stop.wait(self.poll_interval)
            return True
        readable, _, _ = select.select([self._lock_conn], [], [], timeout)
        if readable:
            if self.linger:
                self.stop.wait(self.linger)  # the commits of the next few milliseconds join this round
            self._lock_conn.poll()  # raises if the connection (and so the lock) is gone
            self._lock_conn.notifies.clear()
        return bool(readable)

    def _release(self) -> None:
        self.is_leader.clear()
        with contextlib.suppress(Exception):  # best effort: unmarked, they are sent again (and skipped)
            self._mark_confirmed()
        if self._lock_conn is not None:
            with contextlib.suppress(Exception):  # best effort: the session may be gone already
                self._lock_conn.close()  # closing the session releases the advisory lock
            self._lock_conn = None

    # -- publishing --------------------------------------------------------
    @property
    def producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(producer_config(**self._producer_overrides))
        return self._producer

    def publish_batch(self) -> int:
        """Publish up to ``batch_size`` pending rows in order; return how many were confirmed (negative: failed)."""
        rows = self._read_pending()
        if not rows:
            return 0
        delivered: list[int] = []
        failed: dict[int, KafkaError] = {}

        def on_delivery(row_id: int, err: KafkaError | None, _msg: object) -> None:
            if err is None:
                delivered.append(row_id)
            else:
                failed[row_id] = err

        for row in rows:
            self._produce(row, on_delivery=partial(on_delivery, row.id))
        # Every report arrives by message.timeout.ms at the latest; the loop keeps the heartbeat going.
        while self.producer.flush(1.0) > 0 and not self.stop.is_set():
            self.last_alive = time.monotonic()
        if delivered:
            self._confirmed += delivered  # marked by the next read (or on its own: _step)
            topics = {row.id: row.topic for row in rows}
            metrics.events_published(topics[row_id] for row_id in delivered)
        for row in rows:
            error = failed.get(row.id)
            if error is not None:
                OutboxEvent.objects.filter(id=row.id).update(attempts=F("attempts") + 1, last_error=str(error)[:2000])
                with correlation(correlation_id(bytes(row.value))):  # the envelope's (None: a dead letter)
                    log.info("outbox relay: %s %s not confirmed: %s", row.event_type, row.event_id, error)
        if failed:
            log.warning("outbox relay: %d of %d messages not confirmed", len(failed), len(rows))
            if any(error.fatal() for error in failed.values()):
                # A fatal idempotence error (the producer was fenced): only a new producer can go on.
                log.error("outbox relay: producer failed fatally; starting a new one")
                self._producer = None
        return len(delivered) if not failed else -len(failed)

    def _read_pending(self) -> list[Any]:
        """Mark the confirmed rows sent and read the next ones: one statement on PostgreSQL, two elsewhere."""
        if connection.vendor != "postgresql":
            self._mark_confirmed()
            return self._pending.all()
        confirmed, now = self._confirmed, timezone.now()
        with connection.cursor() as cursor:
            execute(cursor, _MARK_AND_READ_SQL, [now, confirmed, confirmed, self.batch_size])
            found = [_Pending(*row) for row in cursor.fetchall()]
        self._confirmed = []
        return found

    def _mark_confirmed(self) -> None:
        if self._confirmed:
            _mark_sent(self._confirmed)
            self._confirmed = []

    def _produce(self, row: Any, *, on_delivery: Any) -> None:
        while True:
            try:
                self.producer.produce(
                    row.topic,
                    key=row.key.encode(),
                    value=bytes(row.value),
                    headers=[(k, str(v).encode()) for k, v in row.headers.items()],
                    on_delivery=on_delivery,
                )
                return
            except BufferError:
                self.producer.poll(0.05)

    def run(self) -> None:
        """Lead (or stand by) and publish until ``stop`` is set."""
        try:
            while not self.stop.is_set():
                self.last_alive = time.monotonic()
                try:
                    if not self.is_leader.is_set():
                        if not self._try_lead():
                            self.stop.wait(self.standby_retry)
                            continue
                        self.is_leader.set()
                        log.info("outbox relay: leading")
                    self._step()
                except Exception:
                    log.exception("outbox relay: error, backing off")
                    self._release()
                    close_old_connections()
                    connection.close()
                    self.stop.wait(1.0)
        finally:
            if self._producer is not None:
                self._producer.flush(10)
            self._release()  # marks what was confirmed
            connection.close()

    def _step(self) -> None:
        published = self.publish_batch()
        if published < 0:
            self._failures += 1
            self.stop.wait(min(0.1 * 2**self._failures, 5.0))
        elif published >= self.batch_size:
            return
        else:
            self._failures = 0
            if self._confirmed:
                if self._wait_for_work(self.mark_within):
                    return  # the next round's read carries the mark
                self._mark_confirmed()  # no round came: the mark goes on its own
            self._wait_for_work(self.idle_wait)


def _mark_sent(row_ids: list[int]) -> None:
    """Mark the confirmed rows sent, in one statement whatever their number (``= ANY`` of one array on PostgreSQL)."""
    if connection.vendor != "postgresql":
        OutboxEvent.objects.filter(id__in=row_ids).update(sent_at=timezone.now())
        return
    with connection.cursor() as cursor:
        execute(cursor, _MARK_SENT_SQL, [timezone.now(), row_ids])


class _Pending(NamedTuple):
    """An outbox row to publish, as the relay reads it (not a model instance: nothing else is needed)."""

    id: int
    topic: str
    key: str
    raw_value: Any
    raw_headers: Any
    event_type: str
    event_id: Any

    @property
    def value(self) -> bytes:
        return bytes(self.raw_value)

    @property
    def headers(self) -> dict[str, Any]:
        return json.loads(self.raw_headers) if isinstance(self.raw_headers, str | bytes) else self.raw_headers


_TABLE = OutboxEvent._meta.db_table
_MARK_AND_READ_SQL = (
    f"WITH marked AS (UPDATE {_TABLE} SET sent_at = %s WHERE id = ANY(%s)) "  # noqa: S608 - the model's table
    'SELECT id, topic, "key", "value", headers, event_type, event_id '  # the _Pending fields, in order
    f"FROM {_TABLE} WHERE sent_at IS NULL AND id <> ALL(%s) ORDER BY id LIMIT %s"
)
"""One statement: the confirmed rows marked sent, and the next ones read. The ``SELECT`` sees the table as it
was before the ``UPDATE`` (one snapshot), so it leaves the confirmed ones out by their ids."""

_MARK_SENT_SQL = f"UPDATE {_TABLE} SET sent_at = %s WHERE id = ANY(%s)"  # noqa: S608 - the model's table
