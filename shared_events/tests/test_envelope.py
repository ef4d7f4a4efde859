"""The envelope and schemas: what may be sent and what a consumer must refuse."""

import json
import uuid

import pytest

from shared_events import build_event, parse_event
from shared_events.asyncapi import asyncapi_document
from shared_events.envelope import EventError
from shared_events.json_schema import event_json_schemas
from shared_events.schemas import BloodRequestedV1
from shared_events.testing import requested_payload
from shared_events.topics import TOPICS


def _event(**overrides):
    return build_event(
        "hospital.blood.requested", requested_payload(**overrides), source="hospital-service", subject="r1"
    )


def test_a_built_event_parses_back_to_the_same_typed_payload():
    event = _event()
    parsed = parse_event(event.to_bytes())
    assert parsed.id == event.id
    assert isinstance(parsed.data, BloodRequestedV1)
    assert parsed.envelope.dataschema == "urn:bloodbank:event:hospital.blood.requested:v1"
    assert parsed.correlation_id == str(event.id)


def test_a_producer_cannot_build_an_event_that_fails_its_schema():
    with pytest.raises(ValueError, match="units"):
        _event(units=21)
    with pytest.raises(ValueError, match="needed_by"):
        _event(priority="SCHEDULED", needed_by=None)


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"", "empty"),
        (b"not json", "invalid envelope"),
        (b'{"specversion": "1.0"}', "invalid envelope"),
    ],
)
def test_garbage_is_refused_with_a_reason(raw, reason):
    with pytest.raises(EventError, match=reason):
        parse_event(raw)


def test_unknown_type_and_unknown_major_are_refused():
    body = json.loads(_event().to_bytes())
    with pytest.raises(EventError, match="unknown event type"):
        parse_event(json.dumps(body | {"type": "hospital.blood.stolen"}))
    with pytest.raises(EventError, match="unsupported major version v2"):
        parse_event(json.dumps(body | {"dataschema": "urn:bloodbank:event:hospital.blood.requested:v2"}))


def test_a_valid_event_read_from_another_type_s_topic_is_refused(monkeypatch):
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", "t1.")
    raw = build_event("hospital.blood.requested", requested_payload(), source="h", subject="r").to_bytes()

    assert parse_event(raw, topic="t1.hospital.blood.requested").type == "hospital.blood.requested"
    with pytest.raises(EventError, match=r"does not belong on topic 't1\.hospital\.blood\.cancelled'"):
        parse_event(raw, topic="t1.hospital.blood.cancelled")


def test_a_payload_that_breaks_its_schema_is_refused():
    body = json.loads(_event().to_bytes())
    body["data"]["blood_group"] = "C+"
    with pytest.raises(EventError, match="blood_group"):
        parse_event(json.dumps(body))


def test_consumers_ignore_fields_they_do_not_know():
    body = json.loads(_event().to_bytes())
    body["data"]["ward"] = "ICU"
    body["traceparent"] = "00-abc"
    assert parse_event(json.dumps(body)).data.units == 2


def test_patient_identity_is_an_opaque_reference_only():
    assert "patient_name" not in BloodRequestedV1.model_fields
    with pytest.raises(ValueError):
        _event(patient_reference="x" * 65)


def test_every_topic_exports_json_schema_and_asyncapi():
    schemas = event_json_schemas()
    assert set(schemas) == {spec.dataschema(1) for spec in TOPICS.values()}
    doc = asyncapi_document()
    assert set(TOPICS) <= set(doc["channels"])
    assert {"dlq.hospital", "dlq.bloodbank", "dlq.notification"} <= set(doc["channels"])
    assert doc["channels"]["bloodbank.inventory.updated"]["bindings"]["kafka"]["partitions"] == 3


def test_event_ids_are_unique():
    assert len({_event().id for _ in range(50)}) == 50
    assert isinstance(_event().id, uuid.UUID)
