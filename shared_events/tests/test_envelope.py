"""The envelope and schemas: what may be sent and what a consumer must refuse."""

import json
import uuid

import pytest

from shared_events import build_event, parse_event
from shared_events.asyncapi import asyncapi_document
from shared_events.envelope import EventError
from shared_events.json_schema import event_json_schemas
from shared_events.schemas import BloodRequestedV1, BloodRequestedV2, rejected_v2, requested_v2
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
    assert isinstance(parsed.data, BloodRequestedV2)
    assert parsed.envelope.dataschema == "urn:bloodbank:event:hospital.blood.requested:v2"
    assert parsed.correlation_id == str(event.id)


def test_a_v1_request_is_still_read_and_upgrades_to_the_safe_v2_defaults():
    body = json.loads(_event().to_bytes())
    body["dataschema"] = "urn:bloodbank:event:hospital.blood.requested:v1"
    body["data"] = {k: v for k, v in body["data"].items() if k in BloodRequestedV1.model_fields}
    parsed = parse_event(json.dumps(body))
    assert isinstance(parsed.data, BloodRequestedV1)
    upgraded = requested_v2(parsed.data)
    assert (upgraded.group_confirmed, upgraded.rhd_negative_required, upgraded.special_requirements) == (
        False,
        True,
        [],
    )
    with pytest.raises(EventError, match="blood_group"):  # a v1 reader never sees the v2 values
        parse_event(json.dumps(body | {"data": body["data"] | {"blood_group": "UNKNOWN"}}))


def test_v2_request_shapes_mtp_without_component_and_standard_with_it():
    mtp = requested_payload() | {"protocol": "MTP", "component": None, "units": None, "blood_group": "UNKNOWN"}
    assert _event(**mtp).data["protocol"] == "MTP"
    with pytest.raises(ValueError, match="no component or units"):
        _event(**(mtp | {"units": 4}))
    with pytest.raises(ValueError, match="component and units are required"):
        _event(units=None)
    with pytest.raises(ValueError, match="antigen_negative"):
        _event(antigen_negative=["K", "Q"])


def test_a_v2_only_reject_reason_is_refused_in_a_v1_event():
    v2 = build_event(
        "bloodbank.blood.rejected",
        {
            "request_id": str(uuid.uuid4()),
            "hospital_id": str(uuid.uuid4()),
            "reason_code": "NO_UNITS_MEETING_REQUIREMENTS",
            "detail": "no K-negative unit",
            "decided_at": "2026-03-14T09:26:54Z",
            "pack": 2,
        },
        source="bloodbank-service",
        subject="r",
    )
    assert rejected_v2(parse_event(v2.to_bytes()).data).pack == 2
    body = json.loads(v2.to_bytes())
    body["dataschema"] = "urn:bloodbank:event:bloodbank.blood.rejected:v1"
    with pytest.raises(EventError, match="exists from v2 on"):
        parse_event(json.dumps(body))


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
    with pytest.raises(EventError, match="unsupported major version v3"):
        parse_event(json.dumps(body | {"dataschema": "urn:bloodbank:event:hospital.blood.requested:v3"}))


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
    assert set(schemas) == {spec.dataschema(major) for spec in TOPICS.values() for major in spec.payloads}
    doc = asyncapi_document()
    assert set(TOPICS) <= set(doc["channels"])
    assert {"dlq.hospital", "dlq.bloodbank", "dlq.notification"} <= set(doc["channels"])
    assert doc["channels"]["bloodbank.inventory.updated"]["bindings"]["kafka"]["partitions"] == 3


def test_event_ids_are_unique():
    assert len({_event().id for _ in range(50)}) == 50
    assert isinstance(_event().id, uuid.UUID)
