"""What the Kafka cluster says: topic replication, consumer groups' members, assignments and lag.

Read with the admin client from the test process; used to check the cluster's
settings and to explain a test that did not settle (which group holds which
partition, where its committed offset stands against the high watermark).
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, OffsetSpec, ResourceType

from shared_events.kafka_server import KafkaCluster

TIMEOUT = 10.0


@dataclass(frozen=True)
class Replication:
    partitions: int
    replicas: set[int]  # how many replicas the partitions have (one figure when all agree)
    min_insync: int
    isr_sizes: set[int]


def admin(cluster: KafkaCluster) -> AdminClient:
    """An admin client of ``cluster`` (its admin login when the brokers are secured)."""
    return AdminClient(cluster.client_config() | {"log_level": 2})


def replication(cluster: KafkaCluster, topic: str) -> Replication:
    """The replication of ``topic``: replicas and in-sync replicas per partition, and its min.insync.replicas."""
    client = admin(cluster)
    metadata = client.list_topics(topic, timeout=TIMEOUT).topics[topic]
    resource = ConfigResource(ResourceType.TOPIC, topic)
    config = client.describe_configs([resource], request_timeout=TIMEOUT)[resource].result(timeout=TIMEOUT)
    return Replication(
        partitions=len(metadata.partitions),
        replicas={len(p.replicas) for p in metadata.partitions.values()},
        min_insync=int(config["min.insync.replicas"].value),
        isr_sizes={len(p.isrs) for p in metadata.partitions.values()},
    )


def under_replicated(cluster: KafkaCluster) -> list[str]:
    """Partitions (of every topic) whose in-sync replicas are fewer than their replicas."""
    topics = admin(cluster).list_topics(timeout=TIMEOUT).topics
    return [
        f"{name}-{pid} isr={sorted(p.isrs)} replicas={sorted(p.replicas)}"
        for name, meta in topics.items()
        for pid, p in meta.partitions.items()
        if len(p.isrs) < len(p.replicas)
    ]


def group_lag(cluster: KafkaCluster, group: str) -> dict[tuple[str, int], int]:
    """``(topic, partition) -> high watermark minus committed offset`` for every partition ``group`` committed."""
    client = admin(cluster)
    request = [ConsumerGroupTopicPartitions(group)]
    committed = client.list_consumer_group_offsets(request, request_timeout=TIMEOUT)[group].result(timeout=TIMEOUT)
    partitions = [tp for tp in committed.topic_partitions if tp.offset >= 0]
    if not partitions:
        return {}
    ends = client.list_offsets(
        {TopicPartition(tp.topic, tp.partition): OffsetSpec.latest() for tp in partitions}, request_timeout=TIMEOUT
    )
    high = {(tp.topic, tp.partition): info.result(timeout=TIMEOUT).offset for tp, info in ends.items()}
    return {(tp.topic, tp.partition): high[tp.topic, tp.partition] - tp.offset for tp in partitions}


def describe_group(cluster: KafkaCluster, group: str) -> list[str]:
    """One line per member (its instance id and partitions), then the partitions behind, for a failure message."""
    client = admin(cluster)
    description = client.describe_consumer_groups([group], request_timeout=TIMEOUT)[group].result(timeout=TIMEOUT)
    lines = [f"group {group}: {description.state}"]
    for member in description.members:
        assigned = sorted(f"{tp.topic}-{tp.partition}" for tp in member.assignment.topic_partitions)
        lines.append(f"  member {member.group_instance_id or member.member_id}: {', '.join(assigned) or 'nothing'}")
    behind = {f"{topic}-{partition}": lag for (topic, partition), lag in sorted(group_lag(cluster, group).items())}
    lines.append(f"  behind (committed): {({k: v for k, v in behind.items() if v}) or 'nothing'}")
    return lines


def members(cluster: KafkaCluster, group: str) -> dict[str, int]:
    """``instance id (or member id) -> number of partitions assigned`` for each member of ``group``."""
    client = admin(cluster)
    description = client.describe_consumer_groups([group], request_timeout=TIMEOUT)[group].result(timeout=TIMEOUT)
    return {
        member.group_instance_id or member.member_id: len(member.assignment.topic_partitions)
        for member in description.members
    }
