"""JSON Schema and AsyncAPI export, generated from the pydantic classes."""

from __future__ import annotations

import json
from typing import Any

from shared_events.envelope import CloudEvent
from shared_events.topics import TOPICS, all_topics


def event_json_schemas() -> dict[str, Any]:
    """``{dataschema urn: JSON Schema of the payload}`` for every type and major."""
    return {
        spec.dataschema(major): model.model_json_schema()
        for spec in TOPICS.values()
        for major, model in spec.payloads.items()
    }


def asyncapi_document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for spec in TOPICS.values():
        for major, model in spec.payloads.items():
            message_name = f"{spec.name}.v{major}"
            messages[message_name] = {
                "name": message_name,
                "contentType": "application/cloudevents+json",
                "summary": (model.__doc__ or "").strip(),
                "payload": model.model_json_schema(),
                "x-key": spec.key,
                "x-dataschema": spec.dataschema(major),
            }
        channels[spec.name] = {
            "address": spec.name,
            "x-partitions": spec.partitions,
            "x-key": spec.key,
            "x-producer": spec.producer,
            "messages": {
                f"v{major}": {"$ref": f"#/components/messages/{spec.name}.v{major}"} for major in spec.payloads
            },
        }
    for name, partitions in all_topics().items():
        if name.startswith("dlq."):
            channels[name] = {"address": name, "x-partitions": partitions, "x-key": "original key"}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Blood bank system events", "version": "1.0.0"},
        "channels": channels,
        "components": {"messages": messages, "schemas": {"CloudEvent": CloudEvent.model_json_schema()}},
    }


def main() -> None:
    print(json.dumps(asyncapi_document(), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
