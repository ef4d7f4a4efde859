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
    """The CloudEvents 1.0 envelope of every event (structured mode). Other extension attributes are kept."""

    model_config = ConfigDict(extra="allow", frozen=True, json_schema_serialization_defaults_required=True)

    specversion: Literal["1.0"] = Field(default="1.0", description="CloudEvents version.")
    id: UUID = Field(description="Unique per event: deduplicate on it (delivery is at least once).")
    source: str = Field(min_length=1, description="The producing service, e.g. `hospital-service`.")
    type: str = Field(min_length=1, description="The event type, which is also its topic's name.")
    subject: str = Field(min_length=1, description="The aggregate id; also the Kafka message key.")
    time: AwareDatetime = Field(description="When the fact happened (RFC 3339, UTC).")
    datacontenttype: Literal["application/json"] = Field(default="application/json", description="Of `data`.")
    dataschema: str = Field(
        description="`urn:bloodbank:event:<type>:v<major>`: the schema of `data`.",
        # Documented only: parse_event checks it and names the mismatch.
        json_schema_extra={"pattern": r"^urn:bloodbank:event:[a-z_.]+:v[0-9]+$"},
    )
    correlationid: str = Field(min_length=1, description="Extension: the request that started the chain.")
    data: dict[str, Any] = Field(description="The payload, by `dataschema`.")

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
