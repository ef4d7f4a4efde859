"""The work each request costs, counted rather than timed: SQL statements per database, Kafka messages per topic.

CPU per request moves by 5 to 10 % between two runs of the same code on this machine, more
than most single changes save. What a request makes the system do does not: the statements
each database runs for it (PostgreSQL's ``pg_stat_statements``, counted as each statement
ends) and the messages each topic gets (the sum of its partitions' end offsets). A step's
counts are taken from its start to its drain, so the work a request causes later (its
decision, its notifications) is in the step that sent it. Timers (sweeps, health checks)
are counted too, spread over the requests: small next to them at the bench's rates.

``pg_stat_statements`` must be loaded by the server (``shared_preload_libraries``; ``.ci/run``
sets it up). Without it the statements are not counted, and the report says so.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import psycopg2
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

TOP_STATEMENTS = 12  # the most frequent statements, in the report
QUERY_CHARS = 100  # of each one's text


@dataclass(frozen=True)
class Snapshot:
    statements: Counter  # (database group, query text) -> calls so far
    messages: Counter  # topic -> messages so far (end offsets)


@dataclass
class WorkCounter:
    """Counts, at each ``snapshot``, the statements run in ``databases`` (name -> group) and the topics' messages."""

    monitor_dsn: str
    databases: dict[str, str]
    kafka_config: dict[str, str] | None  # an admin client's settings; None: messages not counted
    _admin: AdminClient | None = field(default=None, init=False)
    _consumer: Consumer | None = field(default=None, init=False)
    counts_statements: bool = field(default=False, init=False)

    def start(self) -> None:
        with psycopg2.connect(self.monitor_dsn) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_settings WHERE name = 'pg_stat_statements.max'")
            loaded = cursor.fetchone() is not None
            if loaded:
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        connection.close()
        self.counts_statements = loaded
        if not loaded:
            print("pg_stat_statements is not loaded (shared_preload_libraries): statements are not counted")
        if self.kafka_config is not None:
            self._admin = AdminClient(self.kafka_config)
            self._consumer = Consumer(self.kafka_config | {"group.id": "bench-work", "enable.auto.commit": False})

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.close()

    def snapshot(self) -> Snapshot:
        return Snapshot(statements=self._statements(), messages=self._messages())

    def _statements(self) -> Counter:
        calls: Counter = Counter()
        if not self.counts_statements:
            return calls
        with psycopg2.connect(self.monitor_dsn) as connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT d.datname, s.query, s.calls FROM pg_stat_statements s "
                "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = ANY(%s)",
                (list(self.databases),),
            )
            for database, query, count in cursor.fetchall():
                calls[(self.databases[database], " ".join(query.split()))] += count
        connection.close()
        return calls

    def _messages(self) -> Counter:
        messages: Counter = Counter()
        if self._admin is None or self._consumer is None:
            return messages
        topics = self._admin.list_topics(timeout=10).topics
        for name, topic in topics.items():
            if name.startswith("__"):
                continue
            for partition in topic.partitions:
                _low, high = self._consumer.get_watermark_offsets(TopicPartition(name, partition), timeout=10)
                messages[name] += high
        return messages


def per_request(before: Snapshot, after: Snapshot, requests: int, *, counted_statements: bool) -> dict:
    """What ``requests`` cost between two snapshots: per database and per topic, and the top statements."""
    requests = max(requests, 1)
    statements = after.statements - before.statements
    messages = after.messages - before.messages
    by_database: Counter = Counter()
    commits: Counter = Counter()
    for (group, query), calls in statements.items():
        by_database[group] += calls
        if query.upper() in ("COMMIT", "ROLLBACK"):
            commits[group] += calls
    return {
        "requests": requests,
        "statements_counted": counted_statements,
        "statements": _per(by_database, requests),
        "statements_total": round(sum(by_database.values()) / requests, 2),
        # explicit transactions (a COMMIT or ROLLBACK statement); a statement outside one is a transaction too
        "commits": _per(commits, requests),
        "messages": _per(messages, requests),
        "messages_total": round(sum(messages.values()) / requests, 2),
        "top_statements": [
            {"database": group, "per_request": round(calls / requests, 2), "query": query[:QUERY_CHARS]}
            for (group, query), calls in statements.most_common(TOP_STATEMENTS)
        ],
    }


def _per(counts: Counter, requests: int) -> dict[str, float]:
    return {name: round(count / requests, 2) for name, count in sorted(counts.items(), key=lambda kv: -kv[1]) if count}
