"""How an event travels on Kafka: the CloudEvents Kafka protocol binding 1.0, structured mode.

* value: the whole event (envelope and ``data``) as JSON, UTF-8 (``CloudEvent.to_bytes``);
* key: the event's ``subject`` (request id, ``component:blood_group``, notification id);
* headers: exactly one, ``content-type: application/cloudevents+json; charset=UTF-8``.

No ``ce_*`` header is ever written beside a structured event: a reader of the binding
(a CloudEvents SDK) takes any ``ce_*`` header for binary mode and then fails to find the
event's attributes in the headers. The correlation id is the envelope's ``correlationid``
extension, so it needs no header of its own either.

Reading ignores the headers: the value is the event. Messages written before this binding
(``ce_id``/``ce_type``/``ce_correlationid`` headers beside the same structured value) are
read the same way; outbox rows of that kind still unsent at an upgrade are given the
structured-mode header by migration 0004, so they go out as every event now does.
"""

from __future__ import annotations

import json
from typing import Final

CONTENT_TYPE_HEADER: Final = "content-type"
STRUCTURED_CONTENT_TYPE: Final = "application/cloudevents+json; charset=UTF-8"
"""The ``content-type`` header of every event message (structured mode)."""


def event_headers() -> dict[str, str]:
    """The Kafka headers of an event message (an outbox row's ``headers``)."""
    return {CONTENT_TYPE_HEADER: STRUCTURED_CONTENT_TYPE}


def kept_headers(headers: list[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """The headers of a consumed message that a dead letter keeps: its ``content-type``, if it had one."""
    return {
        name: value.decode(errors="replace")
        for name, value in headers or []
        if name.lower() == CONTENT_TYPE_HEADER and value is not None
    }


def correlation_id(value: bytes) -> str | None:
    """The ``correlationid`` of an event message's value, or None if it is not an event (for log lines)."""
    try:
        envelope = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None
    correlation = envelope.get("correlationid") if isinstance(envelope, dict) else None
    return correlation if isinstance(correlation, str) else None
