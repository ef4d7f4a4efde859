"""Writing to the outbox: call these inside the transaction of the change."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from pydantic import BaseModel

from shared_events.django.config import service_events
from shared_events.django.models import OutboxEvent
from shared_events.django.prepared import insert
from shared_events.envelope import CloudEvent, build_event
from shared_events.topics import topic_name
from shared_events.wire import event_headers

_buffer = threading.local()
NOTIFY_CHANNEL = "shared_events_outbox"


def publish(
    event_type: str,
    data: BaseModel | dict[str, Any],
    *,
    subject: str,
    correlation_id: str | None = None,
    event_id: UUID | None = None,
) -> CloudEvent:
    """Validate and enqueue one event; it is sent after the caller's transaction commits."""
    event, row = outbox_row(event_type, data, subject=subject, correlation_id=correlation_id, event_id=event_id)
    _enqueue(row)
    return event


def outbox_row(
    event_type: str,
    data: BaseModel | dict[str, Any],
    *,
    subject: str,
    correlation_id: str | None = None,
    event_id: UUID | None = None,
) -> tuple[CloudEvent, OutboxEvent]:
    """The event ``publish`` would enqueue, and its outbox row, not written: for the caller to insert with its
    own rows in one statement (``prepared.insert_together``)."""
    event = build_event(
        event_type,
        data,
        source=service_events().source,
        subject=subject,
        correlation_id=correlation_id,
        event_id=event_id,
    )
    row = OutboxEvent(
        topic=topic_name(event_type),
        key=subject,
        value=event.to_bytes(),
        headers=event_headers(),  # structured mode: the content-type header only (shared_events.wire)
        event_id=event.id,
        event_type=event_type,
    )
    return event, row


def enqueue_message(
    *,
    topic: str,
    key: str,
    value: bytes,
    headers: dict[str, str],
    event_type: str,
    event_id: UUID | None = None,
) -> OutboxEvent:
    """Enqueue raw bytes (a re-sent decision, a dead letter) exactly as given."""
    return _enqueue(
        OutboxEvent(topic=topic, key=key, value=value, headers=headers, event_id=event_id, event_type=event_type)
    )


def _enqueue(row: OutboxEvent) -> OutboxEvent:
    if not connection.in_atomic_block:
        # A lone write is its own transaction; still one row, still atomic.
        with transaction.atomic():
            return _enqueue(row)
    pending = getattr(_buffer, "rows", None)
    if pending is not None:
        pending.append(row)
    else:
        # On PostgreSQL a trigger (migration 0002) NOTIFYs NOTIFY_CHANNEL: the relay wakes at commit.
        insert([row])
    return row


@contextmanager
def buffered() -> Iterator[None]:
    """Within the block, collect outbox rows and insert them in one statement at its end.

    Use inside the transaction (the consumer does, around its handlers): the
    rows keep their order, and nothing is written if the block raises.
    """
    if getattr(_buffer, "rows", None) is not None:
        yield  # already collecting: the outer block inserts
        return
    _buffer.rows = rows = []
    try:
        yield
    finally:
        _buffer.rows = None
    if rows:
        insert(rows)  # one statement, built once per row count
