"""The topic registry: every topic's name, key, partitions and payload schema."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from pydantic import BaseModel

from shared_events import schemas


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    partitions: int
    producer: str
    consumers: tuple[str, ...] = ()
    """The services whose workers consume the topic (docs/events.md): each service's ``HANDLERS`` (checked by
    its tests), its AsyncAPI receive operations and its Kafka ACLs follow from it."""
    payloads: dict[int, type[BaseModel]] = field(default_factory=dict)
    """Payload model by major version; consumers accept every major listed."""

    @property
    def latest_major(self) -> int:
        return max(self.payloads)

    def dataschema(self, major: int | None = None) -> str:
        return f"urn:bloodbank:event:{self.name}:v{major or self.latest_major}"


def _spec(
    name: str, key: str, partitions: int, producer: str, consumers: tuple[str, ...], v1: type[BaseModel]
) -> TopicSpec:
    return TopicSpec(
        name=name, key=key, partitions=partitions, producer=producer, consumers=consumers, payloads={1: v1}
    )


REQUESTED = "hospital.blood.requested"
CANCELLED = "hospital.blood.cancelled"
APPROVED = "bloodbank.blood.approved"
REJECTED = "bloodbank.blood.rejected"
RELEASED = "bloodbank.allocation.released"
INVENTORY_UPDATED = "bloodbank.inventory.updated"
LOW_STOCK = "bloodbank.inventory.low_stock"
NOTIFICATION_DELIVERED = "notification.delivered"
UNITS_DISPATCHED = "bloodbank.units.dispatched"
UNITS_RECEIVED = "hospital.units.received"
UNIT_FATE = "hospital.unit.fate"
FATE_OVERDUE = "bloodbank.fate.overdue"
RECALL_ISSUED = "bloodbank.recall.issued"
RECALL_ACKNOWLEDGED = "hospital.recall.acknowledged"
MTP_PACK_REQUESTED = "hospital.mtp.pack_requested"
MTP_STOPPED = "hospital.mtp.stopped"

RARE = 1
"""The partitions of a topic whose events are exceptions, not part of every request (a cancellation, a release,
a stock level crossing, a recall, an MTP pack): one partition carries thousands a second, far beyond their rate.
A consumer's every fetch names every partition it reads, and the broker's work per fetch grows with them
(``bench/results/README.md``): the topics on every request's path keep 6 (or 3 for the 40 stock keys), so that
up to 6 worker replicas share them."""

_BANK_AND_NOTIFICATION = ("bloodbank", "notification")
_HOSPITAL_AND_NOTIFICATION = ("hospital", "notification")

TOPICS: dict[str, TopicSpec] = {
    spec.name: spec
    for spec in (
        TopicSpec(
            REQUESTED,
            "request id",
            6,
            "hospital",
            _BANK_AND_NOTIFICATION,
            {1: schemas.BloodRequestedV1, 2: schemas.BloodRequestedV2},
        ),
        _spec(CANCELLED, "request id", RARE, "hospital", _BANK_AND_NOTIFICATION, schemas.BloodCancelledV1),
        _spec(APPROVED, "request id", 6, "bloodbank", _HOSPITAL_AND_NOTIFICATION, schemas.BloodApprovedV1),
        TopicSpec(
            REJECTED,
            "request id",
            6,
            "bloodbank",
            _HOSPITAL_AND_NOTIFICATION,
            {1: schemas.BloodRejectedV1, 2: schemas.BloodRejectedV2},
        ),
        _spec(RELEASED, "request id", RARE, "bloodbank", _HOSPITAL_AND_NOTIFICATION, schemas.AllocationReleasedV1),
        _spec(
            INVENTORY_UPDATED,
            "component:blood_group",
            3,
            "bloodbank",
            _HOSPITAL_AND_NOTIFICATION,
            schemas.InventoryUpdatedV1,
        ),
        _spec(LOW_STOCK, "component:blood_group", RARE, "bloodbank", _HOSPITAL_AND_NOTIFICATION, schemas.LowStockV1),
        _spec(NOTIFICATION_DELIVERED, "notification id", 3, "notification", (), schemas.NotificationDeliveredV1),
        _spec(UNITS_DISPATCHED, "request id", 6, "bloodbank", _HOSPITAL_AND_NOTIFICATION, schemas.UnitsDispatchedV1),
        _spec(UNITS_RECEIVED, "request id", 6, "hospital", _BANK_AND_NOTIFICATION, schemas.UnitsReceivedV1),
        _spec(UNIT_FATE, "DIN", 6, "hospital", _BANK_AND_NOTIFICATION, schemas.UnitFateV1),
        _spec(FATE_OVERDUE, "hospital id", RARE, "bloodbank", ("notification",), schemas.FateOverdueV1),
        _spec(RECALL_ISSUED, "recall id", RARE, "bloodbank", _HOSPITAL_AND_NOTIFICATION, schemas.RecallIssuedV1),
        _spec(RECALL_ACKNOWLEDGED, "recall id", RARE, "hospital", _BANK_AND_NOTIFICATION, schemas.RecallAcknowledgedV1),
        _spec(MTP_PACK_REQUESTED, "request id", RARE, "hospital", _BANK_AND_NOTIFICATION, schemas.MtpPackRequestedV1),
        _spec(MTP_STOPPED, "request id", RARE, "hospital", _BANK_AND_NOTIFICATION, schemas.MtpStoppedV1),
    )
}

DLQ_SERVICES = ("hospital", "bloodbank", "notification")
DLQ_PARTITIONS = 1


def consumed_by(service: str) -> set[str]:
    """The event types ``service``'s worker handles, as the registry (and so the AsyncAPI document) says."""
    return {spec.name for spec in TOPICS.values() if service in spec.consumers}


def topic_prefix() -> str:
    """Optional environment prefix (``KAFKA_TOPIC_PREFIX``), e.g. to isolate test runs."""
    return os.environ.get("KAFKA_TOPIC_PREFIX", "")


def topic_name(event_type: str) -> str:
    """The Kafka topic that carries ``event_type`` (the type *is* the topic name)."""
    return f"{topic_prefix()}{event_type}"


def dlq_topic(service: str) -> str:
    if service not in DLQ_SERVICES:
        raise ValueError(f"unknown service {service!r}")
    return f"{topic_prefix()}dlq.{service}"


def all_topics() -> dict[str, int]:
    """Every Kafka topic the system needs, with its partition count."""
    wanted = {topic_name(spec.name): spec.partitions for spec in TOPICS.values()}
    wanted.update({dlq_topic(service): DLQ_PARTITIONS for service in DLQ_SERVICES})
    return wanted


def consumer_group(service: str) -> str:
    """The consumer group id of ``service``'s worker (``replay_dlq`` adds ``-dlq-replay``)."""
    return f"{service}-service"


def topic_table() -> list[dict[str, object]]:
    """The registry as rows (``kafka/topics.json``), DLQs included."""
    rows: list[dict[str, object]] = [
        {
            "name": s.name,
            "partitions": s.partitions,
            "key": s.key,
            "producer": s.producer,
            "consumers": list(s.consumers),
        }
        for s in TOPICS.values()
    ]
    rows += [
        {
            "name": f"dlq.{service}",
            "partitions": DLQ_PARTITIONS,
            "key": "original key",
            "producer": f"{service} outbox",
            "consumers": [f"{service} replay_dlq"],
        }
        for service in DLQ_SERVICES
    ]
    return rows


if __name__ == "__main__":
    import json

    print(json.dumps(topic_table(), indent=2))
