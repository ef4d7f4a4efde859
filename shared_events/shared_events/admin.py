"""Topic administration: create every registry topic, idempotently."""

from __future__ import annotations

import os
import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from shared_events.kafka_config import admin_config
from shared_events.topics import all_topics


def create_topics(*, replication_factor: int | None = None, timeout: float = 30.0) -> dict[str, str]:
    """Create the missing topics; return ``{topic: "created" | "exists"}``.

    ``replication_factor`` defaults to ``KAFKA_REPLICATION_FACTOR``, else to the
    brokers' ``default.replication.factor`` (-1); ``min.insync.replicas`` is the
    brokers' too. Waits up to ``timeout`` seconds for the broker to answer, so
    it can run right after the broker was started.
    """
    if replication_factor is None:
        replication_factor = int(os.environ.get("KAFKA_REPLICATION_FACTOR") or -1)
    client = AdminClient(admin_config())
    deadline = time.monotonic() + timeout
    while True:
        try:
            existing = set(client.list_topics(timeout=5).topics)
            break
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    outcome = {name: "exists" for name in all_topics() if name in existing}
    missing = [
        NewTopic(name, num_partitions=partitions, replication_factor=replication_factor)
        for name, partitions in all_topics().items()
        if name not in existing
    ]
    if missing:
        for name, future in client.create_topics(missing, operation_timeout=timeout).items():
            try:
                future.result()
                outcome[name] = "created"
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
                outcome[name] = "exists"
    return outcome
