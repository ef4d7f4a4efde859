"""Outbox rows written by an older version are sent the way events are sent now."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from shared_events.django.models import OutboxEvent
from shared_events.wire import event_headers

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE, AFTER = (
    ("shared_events", "0003_drop_clear_text_tokens"),
    ("shared_events", "0004_outbox_structured_mode_headers"),
)
LEGACY = {
    "ce_id": "4238a7e6-26d9-500f-beee-20b06f7868d7",
    "ce_type": "bloodbank.blood.approved",
    "ce_correlationid": "r",
}


def _migrate(target: tuple[str, str]) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([target])


def _row(event_type: str, headers: dict[str, str], *, sent: bool = False) -> OutboxEvent:
    return OutboxEvent.objects.create(
        topic=event_type,
        key="k",
        value=b"{}",
        headers=headers,
        event_type=event_type,
        sent_at=timezone.now() if sent else None,
    )


def test_unsent_events_with_ce_headers_get_the_structured_mode_header_and_nothing_else_changes():
    _migrate(BEFORE)
    try:
        pending = _row("bloodbank.blood.approved", LEGACY)
        sent = _row("bloodbank.blood.approved", LEGACY, sent=True)
        current = _row("hospital.blood.requested", event_headers())
        dead_letter = _row("dlq.bloodbank", {"dlq_error": "boom", "dlq_original_topic": "x"})
    finally:
        _migrate(AFTER)
    headers = dict(OutboxEvent.objects.values_list("id", "headers"))
    assert headers[pending.id] == event_headers() == {"content-type": "application/cloudevents+json; charset=UTF-8"}
    assert headers[sent.id] == LEGACY  # history
    assert headers[current.id] == event_headers()
    assert headers[dead_letter.id] == {"dlq_error": "boom", "dlq_original_topic": "x"}
