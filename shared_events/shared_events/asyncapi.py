"""The AsyncAPI 3 document of every topic (``docs/asyncapi.json``, ``make asyncapi``).

Generated from the registry (``topics.TOPICS``), the pydantic classes and the examples,
so that it cannot drift from the code; the official parser checks it in the tests. Every
message is the CloudEvents envelope (structured mode, ``shared_events.wire``) with its
event's data schema, and every ``$ref`` points inside the document.
"""

from __future__ import annotations

import json
from typing import Any

from shared_events import examples
from shared_events.json_schema import component_schemas, envelope_schema
from shared_events.topics import DLQ_PARTITIONS, DLQ_SERVICES, TOPICS, TopicSpec
from shared_events.wire import CONTENT_TYPE_HEADER, STRUCTURED_CONTENT_TYPE

ASYNCAPI_VERSION = "3.1.0"  # the newest version the official parser (@asyncapi/parser 3.6) supports
KAFKA_BINDING_VERSION = "0.5.0"
REPLICAS = 1  # the development and compose servers are one broker each (see SERVERS)
LICENSE = {"name": "Proprietary: internal contract of the blood bank system, no licence granted"}

DESCRIPTION = """\
Every event of the blood bank system. How to read one, in any language:

* **Message value**: the whole event as one JSON object, UTF-8: a CloudEvents 1.0 envelope
  (`specversion`, `id`, `source`, `type`, `subject`, `time`, `datacontenttype`,
  `dataschema`, the `correlationid` extension) with the payload in `data`. This is the
  CloudEvents Kafka protocol binding in **structured mode**.
* **Header**: `content-type: application/cloudevents+json; charset=UTF-8`, nothing else
  (no `ce_*` headers). A CloudEvents SDK's Kafka binding decodes the message as it is.
* **Key**: the event's `subject` as UTF-8: the request id, `COMPONENT:BLOOD_GROUP`, or the
  notification id. Events of one key keep their order (one partition).
* **Versioning**: `dataschema` is `urn:bloodbank:event:<type>:v<major>`. Within a major,
  fields are only added (optional ones): ignore fields and extensions you do not know. A
  breaking change is a new major on the same topic; accept the majors you know and
  dead-letter the others.
* **Delivery**: at least once. Deduplicate on `id`; `correlationid` is the id of the
  request that started the chain.
* **Dead letters**: each consuming service has its `dlq.<service>` topic with the original
  key and value (and content-type) and `dlq_*` headers saying why.
"""

SERVERS = {
    "development": {
        "host": "127.0.0.1:9092",
        "protocol": "kafka",
        "protocolVersion": "4.1.1",
        "description": "`make run` / `make kafka`: one Apache Kafka node (KRaft) on this machine, SASL/SCRAM "
        "over a local listener; each service logs in as itself (docs/security.md).",
        "security": [{"$ref": "#/components/securitySchemes/scram"}],
    },
    "compose": {
        "host": "kafka:9092",
        "protocol": "kafka",
        "protocolVersion": "4.1.1",
        "description": "`docker compose up` (docker-compose.yml): the `kafka` service, from the compose network, "
        "SASL/SCRAM.",
        "security": [{"$ref": "#/components/securitySchemes/scram"}],
    },
}

_UUID_KEY = {"type": "string", "format": "uuid"}
KEY_SCHEMAS: dict[str, dict[str, Any]] = {
    "request id": _UUID_KEY | {"description": "The request id (the event's `subject`), UTF-8."},
    "notification id": _UUID_KEY | {"description": "The notification id (the event's `subject`), UTF-8."},
    "component:blood_group": {
        "type": "string",
        "pattern": r"^(WHOLE_BLOOD|RED_CELLS|PLASMA|PLATELETS|CRYO):(O|A|B|AB)[+-]$",
        "description": "`COMPONENT:BLOOD_GROUP` (the event's `subject`), UTF-8, e.g. `RED_CELLS:O+`.",
    },
    "DIN": {
        "type": "string",
        "pattern": r"^[A-Z0-9][0-9]{12}$",
        "description": "The unit's ISBT 128 Donation Identification Number (the event's `subject`), UTF-8.",
    },
    "hospital id": _UUID_KEY | {"description": "The hospital id (the event's `subject`), UTF-8."},
    "recall id": _UUID_KEY | {"description": "The recall id (the event's `subject`), UTF-8."},
}

DEAD_LETTER_HEADERS = {
    "type": "object",
    "description": "Why and where from: the original message's content-type (if it had one) and `dlq_*` headers.",
    "properties": {
        CONTENT_TYPE_HEADER: {"type": "string", "description": "The original message's, when it had one."},
        "dlq_error": {"type": "string", "description": "Exception class and message (at most 2000 characters)."},
        "dlq_consumer_group": {"type": "string", "description": "The consumer group that gave up on it."},
        "dlq_original_topic": {"type": "string"},
        "dlq_original_partition": {"type": "string", "pattern": "^[0-9]+$"},
        "dlq_original_offset": {"type": "string", "pattern": "^[0-9]+$"},
        "dlq_failed_at": {"type": "string", "format": "date-time"},
        "dlq_value_truncated_from": {
            "type": "string",
            "pattern": "^[0-9]+$",
            "description": "Present when the value was cut to 900,000 bytes: its original length.",
        },
    },
    "required": [
        "dlq_error",
        "dlq_consumer_group",
        "dlq_original_topic",
        "dlq_original_partition",
        "dlq_original_offset",
        "dlq_failed_at",
    ],
}

STRUCTURED_HEADERS = {
    "type": "object",
    "description": "CloudEvents Kafka protocol binding, structured mode: this header only.",
    "properties": {CONTENT_TYPE_HEADER: {"type": "string", "const": STRUCTURED_CONTENT_TYPE}},
    "required": [CONTENT_TYPE_HEADER],
}


def _ref(*path: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in path)}


def _message_id(spec: TopicSpec, major: int) -> str:
    return f"{spec.name}.v{major}"


def _kafka(**fields: Any) -> dict[str, Any]:
    return {"kafka": fields | {"bindingVersion": KAFKA_BINDING_VERSION}}


def _event_message(spec: TopicSpec, major: int) -> dict[str, Any]:
    model = spec.payloads[major]
    message: dict[str, Any] = {
        "name": _message_id(spec, major),
        "title": f"{spec.name} v{major}",
        "summary": (model.__doc__ or "").strip().splitlines()[0],
        "contentType": "application/cloudevents+json",
        "headers": _ref("components", "schemas", "StructuredModeHeaders"),
        "payload": _ref("components", "schemas", _message_id(spec, major)),
        "correlationId": {
            "description": "The request that started the chain (the event's own id when it started one).",
            "location": "$message.payload#/correlationid",
        },
        "bindings": _kafka(key=KEY_SCHEMAS[spec.key] | {"examples": [examples.subject(spec.name)]}),
    }
    if major == spec.latest_major:
        message["examples"] = [
            {
                "name": "example",
                "summary": f"key: {examples.subject(spec.name)}",
                "headers": {CONTENT_TYPE_HEADER: STRUCTURED_CONTENT_TYPE},
                "payload": json.loads(examples.example_event(spec.name).to_bytes()),
            }
        ]
    return message


DEAD_LETTER_MESSAGE = {
    "name": "deadLetter",
    "title": "Dead letter",
    "summary": "A message a consumer could not handle: original key and value, byte for byte, and why.",
    "description": "The value is usually a CloudEvent of `dlq_original_topic` (see its messages), but it may be "
    "anything that was published there: an invalid value is one reason for a dead letter. "
    "`manage.py replay_dlq` feeds the letters back to the service's handlers.",
    "headers": _ref("components", "schemas", "DeadLetterHeaders"),
    "payload": {"description": "The original message value, unchanged (cut to 900,000 bytes at most)."},
    "bindings": _kafka(key={"type": "string", "description": "The original message's key."}),
}


def _channels() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    for spec in TOPICS.values():
        channels[spec.name] = {
            "address": spec.name,
            "title": spec.name,
            "description": f"Key: {spec.key}. Produced by {spec.producer}-service.",
            "messages": {
                f"v{major}": _ref("components", "messages", _message_id(spec, major)) for major in spec.payloads
            },
            "bindings": _kafka(topic=spec.name, partitions=spec.partitions, replicas=REPLICAS),
        }
    for service in DLQ_SERVICES:
        name = f"dlq.{service}"
        channels[name] = {
            "address": name,
            "title": name,
            "description": f"What {service}-service's consumer could not handle.",
            "messages": {"deadLetter": _ref("components", "messages", "deadLetter")},
            "bindings": _kafka(topic=name, partitions=DLQ_PARTITIONS, replicas=REPLICAS),
        }
    return channels


def _operation(service: str, action: str, channel: str, message_keys: list[str], summary: str) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "action": action,
        "channel": _ref("channels", channel),
        "summary": summary,
        "tags": [_ref("components", "tags", service)],
        "messages": [_ref("channels", channel, "messages", key) for key in message_keys],
    }
    if action == "receive":
        group = f"{service}-service" + ("-dlq-replay" if channel.startswith("dlq.") else "")
        operation["bindings"] = _kafka(groupId={"type": "string", "const": group})
    return operation


def _operations() -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for spec in TOPICS.values():
        keys = [f"v{major}" for major in spec.payloads]
        operations[f"{spec.producer}.send.{spec.name}"] = _operation(
            spec.producer, "send", spec.name, keys, f"{spec.producer}-service publishes it through its outbox."
        )
        for consumer in spec.consumers:
            operations[f"{consumer}.receive.{spec.name}"] = _operation(
                consumer, "receive", spec.name, keys, f"{consumer}-service's worker handles it."
            )
    for service in DLQ_SERVICES:
        channel = f"dlq.{service}"
        operations[f"{service}.send.{channel}"] = _operation(
            service, "send", channel, ["deadLetter"], "The worker dead-letters what it cannot handle."
        )
        operations[f"{service}.receive.{channel}"] = _operation(
            service, "receive", channel, ["deadLetter"], "`manage.py replay_dlq` hands the letters to the handlers."
        )
    return operations


def asyncapi_document() -> dict[str, Any]:
    schemas = component_schemas()
    for spec in TOPICS.values():
        for major, model in spec.payloads.items():
            schemas[_message_id(spec, major)] = envelope_schema(
                spec, major, _ref("components", "schemas", model.__name__)
            )
    schemas["StructuredModeHeaders"] = STRUCTURED_HEADERS
    schemas["DeadLetterHeaders"] = DEAD_LETTER_HEADERS
    messages = {
        _message_id(spec, major): _event_message(spec, major) for spec in TOPICS.values() for major in spec.payloads
    }
    messages["deadLetter"] = DEAD_LETTER_MESSAGE
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:bloodbank:events",
        "info": {
            "title": "Blood bank system events",
            "version": "1.0.0",
            "description": DESCRIPTION,
            "license": LICENSE,
            "tags": [_ref("components", "tags", service) for service in DLQ_SERVICES],
        },
        "defaultContentType": "application/cloudevents+json",
        "servers": SERVERS,
        "channels": _channels(),
        "operations": _operations(),
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": {
                "scram": {
                    "type": "scramSha512",
                    "description": "SASL/SCRAM-SHA-512: one login per service; ACLs from the topic registry let "
                    "it write only the topics it produces and read only those it consumes.",
                }
            },
            "tags": {
                service: {"name": service, "description": f"What {service}-service sends and receives."}
                for service in DLQ_SERVICES
            },
        },
    }


def main() -> None:
    print(json.dumps(asyncapi_document(), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
