"""docs/asyncapi.json as other teams' tools read it: the official AsyncAPI parser, JSON Schema."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource

from shared_events.asyncapi import asyncapi_document
from shared_events.envelope import parse_event
from shared_events.topics import DLQ_SERVICES, TOPICS

ROOT = Path(__file__).resolve().parents[2]
VALIDATE = ROOT / "tools" / "asyncapi-validate.mjs"
DOCUMENT = ROOT / "docs" / "asyncapi.json"


def official_parser(path: Path) -> subprocess.CompletedProcess[str]:
    """``@asyncapi/parser`` (tools/package.json) on ``path``: exit 1 on any error or warning."""
    assert (ROOT / "tools" / "node_modules" / "@asyncapi" / "parser").is_dir(), "run make node_modules"
    return subprocess.run(
        ["node", str(VALIDATE), str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_official_parser_finds_nothing_to_report_in_docs_asyncapi_json():
    result = official_parser(DOCUMENT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1].endswith(": 0 diagnostics, parsed"), result.stdout


def test_the_parser_check_fails_on_a_reference_that_does_not_resolve(tmp_path):
    document = asyncapi_document()
    document["components"]["schemas"]["BloodRequestedV1"]["properties"]["priority"] = {"$ref": "#/$defs/Priority"}
    broken = tmp_path / "asyncapi.json"
    broken.write_text(json.dumps(document))
    result = official_parser(broken)
    assert result.returncode == 1
    assert "error invalid-ref" in result.stdout and "'#/$defs/Priority' does not exist" in result.stdout


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft7Validator:
    """A validator of ``schema`` whose ``#/components/...`` references resolve in ``document``."""
    registry = Registry().with_resource("urn:asyncapi", Resource.opaque(document))
    return Draft7Validator({"$ref": "urn:asyncapi" + schema["$ref"]}, registry=registry)


@pytest.mark.parametrize("event_type", list(TOPICS))
def test_each_message_example_matches_its_schemas_and_is_a_valid_event(event_type):
    document = asyncapi_document()
    latest = TOPICS[event_type].latest_major
    message = document["components"]["messages"][f"{event_type}.v{latest}"]
    (example,) = message["examples"]
    payload_errors = list(_validator(document, message["payload"]).iter_errors(example["payload"]))
    header_errors = list(_validator(document, message["headers"]).iter_errors(example["headers"]))
    assert payload_errors == header_errors == []
    event = parse_event(json.dumps(example["payload"]), topic=event_type)
    key_schema = message["bindings"]["kafka"]["key"]
    assert key_schema["examples"] == [event.subject]
    assert (
        list(Draft7Validator(key_schema, format_checker=Draft7Validator.FORMAT_CHECKER).iter_errors(event.subject))
        == []
    )


def test_a_wrong_example_fails_the_schema_check():
    document = asyncapi_document()
    message = document["components"]["messages"]["hospital.blood.requested.v2"]
    payload = message["examples"][0]["payload"]
    wrong = payload | {"type": "bloodbank.blood.approved", "data": payload["data"] | {"units": "two"}}
    assert len(list(_validator(document, message["payload"]).iter_errors(wrong))) == 2


def test_every_service_sends_and_receives_what_the_registry_says():
    operations = asyncapi_document()["operations"]
    expected = {f"{spec.producer}.send.{spec.name}" for spec in TOPICS.values()}
    expected |= {f"{consumer}.receive.{spec.name}" for spec in TOPICS.values() for consumer in spec.consumers}
    expected |= {f"{service}.{action}.dlq.{service}" for service in DLQ_SERVICES for action in ("send", "receive")}
    assert set(operations) == expected
    assert operations["bloodbank.receive.hospital.blood.requested"]["bindings"]["kafka"]["groupId"] == {
        "type": "string",
        "const": "bloodbank-service",
    }
