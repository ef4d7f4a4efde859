"""What ``make bench`` counts as each request's work (bench/work.py), against real PostgreSQL and the real broker."""

from __future__ import annotations

import os
import uuid
from collections import Counter

import psycopg2
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from databases import fresh_database
from work import Snapshot, WorkCounter, per_request

from shared_events.kafka_config import admin_config

MONITOR = "postgres://postgres@127.0.0.1:5432/postgres"


def test_each_database_and_topic_is_divided_by_the_requests_and_the_most_frequent_statements_come_first():
    before = Snapshot(statements=Counter({("bank", "SELECT 1"): 10}), messages=Counter({"approved": 5}))
    after = Snapshot(
        statements=Counter({("bank", "SELECT 1"): 50, ("bank", "COMMIT"): 20, ("hospital", "INSERT"): 10}),
        messages=Counter({"approved": 25, "requested": 20}),
    )
    work = per_request(before, after, 20, counted_statements=True)
    assert work["statements"] == {"bank": 3.0, "hospital": 0.5}
    assert work["statements_total"] == 3.5
    assert work["commits"] == {"bank": 1.0}
    assert work["messages"] == {"approved": 1.0, "requested": 1.0} and work["messages_total"] == 2.0
    assert [row["query"] for row in work["top_statements"]] == ["SELECT 1", "COMMIT", "INSERT"]


def test_the_statements_of_a_database_and_the_messages_of_a_topic_are_counted_as_they_happen():
    name = f"bench_work_{os.getpid()}"
    dsn = fresh_database(name)
    topic = f"bench-work-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(admin_config())
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(30)
    counter = WorkCounter(MONITOR, {name: "postgres: bench"}, admin_config())
    counter.start()
    try:
        assert counter.counts_statements, ".ci/run loads pg_stat_statements"
        before = counter.snapshot()
        connection = psycopg2.connect(dsn)
        with connection, connection.cursor() as cursor:  # BEGIN, three statements, COMMIT
            for value in (1, 2, 3):
                cursor.execute("SELECT %s::int + 1", (value,))
        connection.close()
        producer = Producer(admin_config())
        for i in range(4):
            producer.produce(topic, key=str(i), value=b"x")
        assert producer.flush(30) == 0
        work = per_request(before, counter.snapshot(), 2, counted_statements=True)
    finally:
        counter.stop()
    assert work["statements"] == {"postgres: bench": 2.5}  # (BEGIN + 3 + COMMIT) / 2 requests
    assert work["commits"] == {"postgres: bench": 0.5}
    assert work["top_statements"][0] == {
        "database": "postgres: bench",
        "per_request": 1.5,
        "query": "SELECT $1::int + $2",
    }
    assert work["messages"] == {topic: 2.0}  # 4 messages over both partitions
