"""JSON Schema of the events, generated from the pydantic classes (the AsyncAPI document's schemas)."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from shared_events.envelope import CloudEvent
from shared_events.examples import SOURCES
from shared_events.topics import TOPICS, TopicSpec

REF_TEMPLATE = "#/components/schemas/{model}"


def event_json_schemas() -> dict[str, Any]:
    """``{dataschema urn: JSON Schema of the payload}`` for every type and major (each self-contained)."""
    return {
        spec.dataschema(major): model.model_json_schema()
        for spec in TOPICS.values()
        for major, model in spec.payloads.items()
    }


def component_schemas() -> dict[str, Any]:
    """Every payload class, the classes and enums they use, and ``CloudEvent``, by class name.

    References between them point at ``#/components/schemas/<name>``, so the lot goes
    into a document's components as it is. ``CloudEvent`` is as written (serialization
    mode): every attribute is present on the wire.
    """
    models: list[tuple[Any, Any]] = [
        (model, "validation") for spec in TOPICS.values() for model in spec.payloads.values()
    ]
    _, top = models_json_schema([*models, (CloudEvent, "serialization")], ref_template=REF_TEMPLATE)
    return dict(top["$defs"])


def envelope_schema(spec: TopicSpec, major: int, data: dict[str, Any]) -> dict[str, Any]:
    """The envelope of one event type and major: ``CloudEvent`` with its attributes fixed and ``data``."""
    return {
        "title": f"{spec.name} v{major} (CloudEvent)",
        "allOf": [
            {"$ref": REF_TEMPLATE.format(model="CloudEvent")},
            {
                "type": "object",
                "properties": {
                    "type": {"const": spec.name},
                    "source": {"const": SOURCES[spec.producer]},
                    "dataschema": {"const": spec.dataschema(major)},
                    "data": data,
                },
            },
        ],
    }
