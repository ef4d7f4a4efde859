"""Generated artefacts in the repository match the classes they come from."""

import json
from pathlib import Path

import pytest
from cloudevents.core.bindings import kafka as binding
from cloudevents.core.formats.json import JSONFormat

from shared_events import examples
from shared_events.asyncapi import asyncapi_document
from shared_events.envelope import parse_event
from shared_events.topics import APPROVED, topic_table
from shared_events.wire import event_headers

ROOT = Path(__file__).resolve().parents[2]


def test_docs_asyncapi_is_generated_from_the_event_classes():
    assert json.loads((ROOT / "docs" / "asyncapi.json").read_text()) == asyncapi_document(), "run make asyncapi"


def test_kafka_topics_json_matches_the_registry():
    assert json.loads((ROOT / "kafka" / "topics.json").read_text()) == topic_table(), "run make asyncapi"


def _wire_example(doc: str) -> dict[str, str]:
    """The ``key:``/``headers:``/``value:`` lines of the example message in ``docs/<doc>`` (indent stripped)."""
    lines = [line.strip() for line in (ROOT / "docs" / doc).read_text().splitlines()]
    return {
        line[:8].rstrip(": "): line[9:] for line in lines if line.startswith(("key:     ", "headers: ", "value:   "))
    }


@pytest.mark.parametrize("doc", ["events.md", "api.md"])
def test_the_wire_example_in_the_docs_is_the_example_event(doc):
    wire = _wire_example(doc)
    example = examples.example_event(APPROVED)
    assert wire == {
        "key": example.subject,
        "headers": "content-type: application/cloudevents+json; charset=UTF-8",
        "value": example.to_bytes().decode(),
    }, f"run make asyncapi, then copy the example into docs/{doc}"
    name, value = wire["headers"].split(": ", 1)
    assert {name: value} == event_headers()  # what the relay sends with every event
    message = binding.KafkaMessage(
        headers={name: value.encode()}, key=wire["key"].encode(), value=wire["value"].encode()
    )
    assert binding.from_kafka(message, JSONFormat()).get_id() == str(example.id)
    assert parse_event(wire["value"], topic=APPROVED).data.units_allocated == 2


def test_the_indented_value_in_docs_events_md_is_the_wire_value():
    text = (ROOT / "docs" / "events.md").read_text()
    indented = text.split("The value, indented:\n\n```json\n", 1)[1].split("\n```", 1)[0]
    assert json.loads(indented) == json.loads(_wire_example("events.md")["value"])
