"""The consumer runner: poll, validate, dedup, handle, store the offset.

Handlers are plain functions ``handler(event) -> None`` that change the
service's database; the runner owns everything Kafka:

* an event is validated first; an invalid or unknown one is dead-lettered;
* the handler runs in one transaction with the ``InboxEvent`` insert, so a
  redelivered event is skipped;
* the offset is stored only after that transaction committed;
* a database outage blocks and retries with backoff without advancing;
* a handler that keeps failing is dead-lettered after ``max_attempts``;
* a consumer that librdkafka declares failed for good (a fatal error, e.g. a
  static member fenced) is closed and replaced by a new one.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any
from uuid import UUID

from confluent_kafka import Consumer, KafkaError, KafkaException, Message
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.utils import timezone

from shared_events.django import metrics, outbox
from shared_events.django.batch import scope as batch_scope
from shared_events.django.config import Handler, service_events
from shared_events.django.logging import correlation
from shared_events.django.models import InboxEvent
from shared_events.django.outbox import enqueue_message
from shared_events.django.prepared import execute
from shared_events.envelope import Event, EventError, parse_event
from shared_events.kafka_config import consumer_config
from shared_events.topics import dlq_topic, topic_name
from shared_events.wire import kept_headers

log = logging.getLogger(__name__)

TRANSIENT_ERRORS = (OperationalError, InterfaceError)

DLQ_MAX_VALUE_BYTES = 900_000
"""A dead letter keeps at most this much of the original value (``dlq_value_truncated_from`` says it was cut):
with its headers it must stay under the producer's ``message.max.bytes`` (1,000,000 by default), or the relay
could never publish it and every outbox row after it would wait."""


FATAL_RESTART_SECONDS = 1.0
"""The wait before a new consumer replaces one that failed for good."""


class FatalConsumerError(Exception):
    """librdkafka raised a fatal error: this consumer instance cannot be used any more."""


class EventConsumer:
    def __init__(
        self,
        *,
        handlers: Mapping[str, Handler],
        stop: threading.Event,
        group_id: str | None = None,
        max_attempts: int = 3,
        batch_size: int = 20,
        batch_wait: float | None = None,
        retry_backoff: float = 0.2,
        periodic: list[tuple[Callable[[], Any], float]] | None = None,
        when_caught_up: list[Callable[[], Any]] | None = None,
        consumer_overrides: dict[str, Any] | None = None,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        conf = service_events()
        self.handlers = dict(handlers)
        self.stop = stop
        self.service = conf.service
        self.group_id = group_id or conf.consumer_group
        self.max_attempts = max_attempts
        self.batch_size = batch_size
        # How long a batch waits for more events after its first (the service's CONSUMER_BATCH_WAIT).
        self.batch_wait = conf.consumer_batch_wait if batch_wait is None else batch_wait
        self.retry_backoff = retry_backoff
        self.periodic = [[task, interval, 0.0] for task, interval in (periodic or [])]
        self.when_caught_up = list(when_caught_up or [])
        # librdkafka settings: the service's (CONSUMER_SETTINGS), then the caller's over them.
        self._consumer_overrides = dict(conf.consumer_settings or {}) | (consumer_overrides or {})
        self.assigned = threading.Event()
        self.on_tick = on_tick  # called every loop iteration (the worker's heartbeat)
        self.lag = metrics.LagReporter()
        self.fatal_errors = 0  # consumers replaced after a fatal error

    # -- the loop ------------------------------------------------------------
    def run(self) -> None:
        """Consume until ``stop``; a consumer that librdkafka declares failed for good is replaced by a new one."""
        try:
            while not self.stop.is_set():
                consumer = self._subscribe()
                try:
                    self._consume(consumer)
                except FatalConsumerError as exc:
                    self.fatal_errors += 1
                    log.error("consumer %s failed for good (%s); starting a new one", self.group_id, exc)
                    self.stop.wait(FATAL_RESTART_SECONDS)
                finally:
                    self._close(consumer)
        finally:
            connection.close()

    def _subscribe(self) -> Consumer:
        consumer = Consumer(consumer_config(self.group_id, **self._consumer_overrides))
        topics = sorted({topic_name(event_type) for event_type in self.handlers})
        consumer.subscribe(
            topics,
            on_assign=lambda _c, _p: self.assigned.set(),
            on_revoke=lambda _c, partitions: self.lag.forget(partitions),
        )
        log.info("consumer %s subscribed to %s", self.group_id, topics)
        return consumer

    def _consume(self, consumer: Consumer) -> None:
        """The loop of one consumer; raises ``FatalConsumerError`` when librdkafka says it cannot go on."""
        try:
            while not self.stop.is_set():
                self._run_periodic()
                batch = self._poll_batch(consumer)
                # A batch smaller than asked for left nothing fetched: the backlog is handled.
                for msg in self.process_batch(batch, caught_up=bool(batch) and len(batch) < self.batch_size):
                    consumer.store_offsets(msg)
                self.lag.maybe_update(consumer)
                if self.on_tick is not None:
                    self.on_tick()
        except KafkaException as exc:
            if exc.args and isinstance(exc.args[0], KafkaError) and _fatal(exc.args[0]):
                raise FatalConsumerError(exc.args[0]) from exc
            raise

    def _close(self, consumer: Consumer) -> None:
        """Commit stored offsets and leave (a failed consumer commits nothing: its events come again, and the
        inbox skips those already handled)."""
        self.assigned.clear()
        try:
            consumer.close()
        except (KafkaException, RuntimeError) as exc:
            log.warning("consumer %s: close: %s", self.group_id, exc)

    def _poll_batch(self, consumer: Consumer) -> list[Message]:
        """Wait up to 100 ms for a message, then up to ``batch_wait`` more for others (up to ``batch_size``).

        A quiet consumer handles each event a few milliseconds after it comes; under
        load, the events of those milliseconds share one transaction (one inbox
        claim, one commit, one outbox relay round), which is most of what an event
        costs. A backlog is drained in full batches without waiting.
        """
        batch: list[Message] = []
        msg = consumer.poll(0.1)
        deadline = time.monotonic() + self.batch_wait
        while msg is not None:
            if msg.error():
                if _fatal(msg.error()):
                    # e.g. FENCED_INSTANCE_ID: a static member whose session timed out while its group
                    # coordinator moved is fenced by its own rejoin. This consumer will never fetch again.
                    raise FatalConsumerError(msg.error())
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", msg.error())
            else:
                batch.append(msg)
            if len(batch) >= self.batch_size:
                break
            msg = consumer.poll(0)
            if msg is None and batch:
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    msg = consumer.poll(remaining)
        return batch

    def _run_periodic(self) -> None:
        now = time.monotonic()
        due = []
        for entry in self.periodic:
            task, interval, last = entry
            if now - last >= interval:
                entry[2] = now
                due.append(task)
        self._run_tasks(due)

    def _run_tasks(self, tasks: list[Callable[[], Any]]) -> None:
        for task in tasks:
            try:
                self._with_db_retry(task)
            except Exception:
                log.exception("task %s failed", getattr(task, "__name__", task))

    # -- messages ----------------------------------------------------------------
    def process_batch(self, msgs: list[Message], *, caught_up: bool = False) -> list[Message]:
        """Handle ``msgs`` in order; return those done (handled or dead-lettered), to store offsets.

        Several valid events are handled in one transaction (one commit for the
        lot, each with its inbox row). If anything in it fails, the whole
        transaction rolls back and every message is handled on its own, with
        the usual retries and dead-lettering, so one bad event costs its
        neighbours nothing but a second try.

        ``caught_up``: nothing more was fetched, so the ``when_caught_up`` tasks run
        too, at the end of the batch's transaction (their work commits with the
        batch's, in one commit and one outbox insert). A task that fails rolls the
        batch back like a failing handler; the messages are then handled one at a
        time and the tasks run after them in a transaction of their own, where a
        failure of theirs is only logged: a task never dead-letters an event.
        """
        tasks = self.when_caught_up if caught_up else []
        if len(msgs) > 1 or (msgs and tasks):
            try:
                self._handle_together([(msg, *self._prepare(msg)) for msg in msgs], tasks=tasks)
                return msgs
            except Exception as exc:  # noqa: BLE001 - every message gets its own full handling next
                log.info("batch of %d not handled together (%r); one at a time", len(msgs), exc)
                if isinstance(exc, TRANSIENT_ERRORS):
                    connection.close()
        done = []
        for msg in msgs:
            if not self.process(msg):
                break
            done.append(msg)
        if tasks and len(done) == len(msgs):
            self._run_tasks(tasks)
        return done

    def _prepare(self, msg: Message) -> tuple[Event, Handler]:
        event = parse_event(msg.value(), topic=self._read_from(msg))
        handler = self.handlers.get(event.type)
        if handler is None:
            raise EventError(f"no handler for event type {event.type!r} in {self.group_id}")
        return event, handler

    def _read_from(self, msg: Message) -> str:
        """The topic the event was published on: a dead letter being replayed names it in a header."""
        if msg.topic() == dlq_topic(self.service):
            original = dict(msg.headers() or []).get("dlq_original_topic")
            if original:
                return original.decode(errors="replace")
        return msg.topic()

    def process(self, msg: Message, *, replay: bool = False) -> bool:
        """Handle or dead-letter ``msg``; return False only when stopping mid-way."""
        try:
            event, handler = self._prepare(msg)
        except EventError as exc:
            return self._with_db_retry(partial(self._dead_letter, msg, exc, event=None)) is not _STOPPED
        with correlation(event.correlation_id):
            return self._process_valid(msg, event, handler, replay=replay)

    def _process_valid(self, msg: Message, event: Event, handler: Handler, *, replay: bool) -> bool:
        attempt = 0
        while True:
            try:
                self._handle(msg, event, handler, replay=replay)
                return True
            except TRANSIENT_ERRORS as exc:
                log.warning("database unavailable handling %s (%s); retrying", event.id, exc)
                connection.close()
                if self.stop.wait(min(self.retry_backoff * 2 ** min(attempt, 5), 5.0)):
                    return False
                attempt += 1
            except Exception as exc:  # noqa: BLE001 - any handler failure counts towards the DLQ
                attempt += 1
                metrics.handler_failed(msg.topic())
                log.warning("handler failed on %s (attempt %d/%d): %r", event.id, attempt, self.max_attempts, exc)
                if attempt >= self.max_attempts:
                    return self._with_db_retry(partial(self._dead_letter, msg, exc, event=event)) is not _STOPPED
                if self.stop.wait(self.retry_backoff * 2 ** (attempt - 1)):
                    return False

    def _handle(self, msg: Message, event: Event, handler: Handler, *, replay: bool) -> None:
        if replay:
            with transaction.atomic():
                InboxEvent.objects.filter(
                    consumer_group=self.group_id, event_id=event.id, outcome=InboxEvent.Outcome.DEAD_LETTERED
                ).delete()
                self._handle_together([(msg, event, handler)])
        else:
            self._handle_together([(msg, event, handler)])

    def _handle_together(
        self, prepared: list[tuple[Message, Event, Handler]], *, tasks: Sequence[Callable[[], Any]] = ()
    ) -> None:
        """Claim the events in the inbox and run the handlers of the new ones, then ``tasks``, in one transaction.

        The claim is one statement for the lot, and the outbox rows the
        handlers and tasks write are inserted together at the end (one statement).
        """
        outcomes = []
        with transaction.atomic(), outbox.buffered(), batch_scope(events=[event for _, event, _ in prepared]):
            claimed = self._claim([(msg, event) for msg, event, _ in prepared])
            for msg, event, handler in prepared:
                with correlation(event.correlation_id):
                    if event.id not in claimed:
                        log.info("skipping %s %s: already in the inbox", event.type, event.id)
                        outcomes.append((msg.topic(), "duplicate"))
                        continue
                    claimed.discard(event.id)  # the same event twice in one batch is handled once
                    handler(event)
                    outcomes.append((msg.topic(), "handled"))
            for task in tasks:
                task()
        metrics.events_consumed(outcomes)  # committed: counted once, even when a batch was retried singly

    def _claim(self, items: list[tuple[Message, Event]]) -> set[UUID]:
        """Record the events in the inbox; return the ids this group did not have yet.

        ``INSERT ... ON CONFLICT DO NOTHING RETURNING``: a concurrent claim of
        the same event waits for the other transaction and then finds the row,
        so two workers never both handle it.
        """
        now = timezone.now()
        fields = [InboxEvent._meta.get_field(name) for name in _CLAIM_FIELDS]
        params: list[Any] = []
        for msg, event in items:
            values = (self.group_id, event.id, event.type, msg.topic(), msg.partition(), msg.offset(), "HANDLED", now)
            params += [field.get_db_prep_value(value, connection) for field, value in zip(fields, values, strict=True)]
        event_id = InboxEvent._meta.get_field("event_id")
        with connection.cursor() as cursor:
            execute(cursor, _claim_sql(tuple(field.column for field in fields), len(items)), params)
            return {event_id.to_python(row[0]) for row in cursor.fetchall()}

    def _record(self, msg: Message, event: Event, outcome: str) -> None:
        InboxEvent.objects.create(
            consumer_group=self.group_id,
            event_id=event.id,
            event_type=event.type,
            topic=msg.topic(),
            partition=msg.partition(),
            offset=msg.offset(),
            outcome=outcome,
        )

    def _dead_letter(self, msg: Message, error: BaseException, *, event: Event | None) -> None:
        # The original content-type is kept: a dead-lettered event still reads as a CloudEvent.
        headers = kept_headers(msg.headers()) | {
            "dlq_error": f"{type(error).__name__}: {error}"[:2000],
            "dlq_consumer_group": self.group_id,
            "dlq_original_topic": msg.topic(),
            "dlq_original_partition": str(msg.partition()),
            "dlq_original_offset": str(msg.offset()),
            "dlq_failed_at": datetime.now(UTC).isoformat(),
        }
        key = msg.key().decode(errors="replace") if msg.key() else ""
        value = msg.value() or b""
        if len(value) > DLQ_MAX_VALUE_BYTES:
            headers["dlq_value_truncated_from"] = str(len(value))
            value = value[:DLQ_MAX_VALUE_BYTES]
        with transaction.atomic():
            if event is not None:
                if InboxEvent.objects.filter(consumer_group=self.group_id, event_id=event.id).exists():
                    metrics.events_consumed([(msg.topic(), "duplicate")])
                    return  # already dead-lettered once
                self._record(msg, event, InboxEvent.Outcome.DEAD_LETTERED)
            enqueue_message(
                topic=dlq_topic(self.service),
                key=key,
                value=value,
                headers=headers,
                event_type=f"dlq.{self.service}",
            )
        metrics.dead_lettered(msg.topic(), invalid=event is None)
        log.error("dead-lettered %s[%s]@%s: %s", msg.topic(), msg.partition(), msg.offset(), headers["dlq_error"])

    def _with_db_retry(self, action: Callable[[], Any]) -> Any:
        """Run ``action``, blocking through database outages; ``_STOPPED`` if stopped first."""
        attempt = 0
        while True:
            try:
                return action()
            except TRANSIENT_ERRORS as exc:
                log.warning("database unavailable (%s); retrying", exc)
                connection.close()
            except DatabaseError:
                connection.close()
                raise
            if self.stop.wait(min(self.retry_backoff * 2 ** min(attempt, 5), 5.0)):
                return _STOPPED
            attempt += 1


_STOPPED = object()


def _fatal(error: KafkaError) -> bool:
    """librdkafka reports its fatal error to a consumer as an error event with the code ``_FATAL``."""
    return error.fatal() or error.code() == KafkaError._FATAL


_CLAIM_FIELDS = ("consumer_group", "event_id", "event_type", "topic", "partition", "offset", "outcome", "processed_at")


@functools.cache
def _claim_sql(columns: tuple[str, ...], rows: int) -> str:
    quote = connection.ops.quote_name
    table, names = quote(InboxEvent._meta.db_table), ", ".join(quote(column) for column in columns)
    placeholders = ", ".join([f"({', '.join(['%s'] * len(columns))})"] * rows)
    # Identifiers come from the model; every value is a query parameter.
    return (
        f"INSERT INTO {table} ({names}) VALUES {placeholders} "  # noqa: S608
        "ON CONFLICT (consumer_group, event_id) DO NOTHING RETURNING event_id"
    )
