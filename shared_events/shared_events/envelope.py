"""The CloudEvents 1.0 envelope (structured JSON mode) and its typed view.

``build_event`` is the only way to make an event: it validates the payload
against the registry, so a producer cannot send an event that fails its
schema. ``parse_event`` is the only way to read one: it validates envelope and
payload, and raises ``EventError`` for anything a consumer must dead-letter.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shared_events.topics import TOPICS, topic_name

_DATASCHEMA = re.compile(r"^urn:bloodbank:event:(?P<type>[a-z_.]+):v(?P<major>\d+)$")


class EventError(ValueError):
    """An event that cannot be handled as it is: invalid, unknown type or major."""


class CloudEvent(BaseModel):
    """The envelope. Extension attributes beyond ``correlationid`` are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: UUID
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str = Field(min_length=1)
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str
    correlationid: str = Field(min_length=1)
    data: dict[str, Any]

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


@dataclass(frozen=True)
class Event:
    """A validated event as handlers see it: the envelope plus its typed payload."""

    envelope: CloudEvent
    data: BaseModel
    major: int

    @property
    def id(self) -> UUID:
        return self.envelope.id

    @property
    def type(self) -> str:
        return self.envelope.type

    @property
    def subject(self) -> str:
        return self.envelope.subject

    @property
    def correlation_id(self) -> str:
        return self.envelope.correlationid

    @property
    def time(self) -> datetime:
        return self.envelope.time


def build_event(
    event_type: str,
    data: BaseModel | dict[str, Any],
    *,
    source: str,
    subject: str,
    correlation_id: str | None = None,
    event_id: UUID | None = None,
    time: datetime | None = None,
) -> CloudEvent:
    """Make a schema-valid event of ``event_type`` (latest major)."""
    spec = TOPICS.get(event_type)
    if spec is None:
        raise EventError(f"unknown event type {event_type!r}")
    model = spec.payloads[spec.latest_major]
    # An instance of the very model was validated when it was made; anything else is validated now.
    payload = (
        data
        if type(data) is model
        else model.model_validate(data.model_dump() if isinstance(data, BaseModel) else data)
    )
    event_id = event_id or uuid.uuid4()
    return CloudEvent(
        id=event_id,
        source=source,
        type=event_type,
        subject=subject,
        time=time or datetime.now(UTC),
        dataschema=spec.dataschema(),
        correlationid=correlation_id or str(event_id),
        data=payload.model_dump(mode="json"),
    )


def parse_event(raw: bytes | str | None, *, topic: str | None = None) -> Event:
    """Validate a Kafka message value; raise ``EventError`` if it must be dead-lettered.

    With ``topic`` (the topic the message was read from), an event whose type belongs on
    another topic is refused too.
    """
    if not raw:
        raise EventError("empty message value")
    try:
        envelope = CloudEvent.model_validate_json(raw)
    except ValidationError as exc:
        raise EventError(f"invalid envelope: {_short(exc)}") from exc
    spec = TOPICS.get(envelope.type)
    if spec is None:
        raise EventError(f"unknown event type {envelope.type!r}")
    if topic is not None and topic != topic_name(envelope.type):
        raise EventError(f"event type {envelope.type!r} does not belong on topic {topic!r}")
    match = _DATASCHEMA.match(envelope.dataschema)
    if match is None or match["type"] != envelope.type:
        raise EventError(f"dataschema {envelope.dataschema!r} does not name type {envelope.type!r}")
    major = int(match["major"])
    model = spec.payloads.get(major)
    if model is None:
        raise EventError(f"unsupported major version v{major} of {envelope.type}")
    try:
        data = model.model_validate(envelope.data)
    except ValidationError as exc:
        raise EventError(f"invalid {envelope.type} payload: {_short(exc)}") from exc
    return Event(envelope=envelope, data=data, major=major)


def _short(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()[:5])
