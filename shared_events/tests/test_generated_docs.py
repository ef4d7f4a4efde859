"""Generated artefacts in the repository match the classes they come from."""

import json
from pathlib import Path

from shared_events.asyncapi import asyncapi_document
from shared_events.topics import topic_table

ROOT = Path(__file__).resolve().parents[2]


def test_docs_asyncapi_is_generated_from_the_event_classes():
    assert json.loads((ROOT / "docs" / "asyncapi.json").read_text()) == asyncapi_document(), "run make asyncapi"


def test_kafka_topics_json_matches_the_registry():
    assert json.loads((ROOT / "kafka" / "topics.json").read_text()) == topic_table(), "run make asyncapi"
