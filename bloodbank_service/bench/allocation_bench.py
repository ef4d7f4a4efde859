"""Allocation throughput of one worker on PostgreSQL, and where the time goes.

Run: ``cd bloodbank_service && ../.venv/bin/python bench/allocation_bench.py [--requests N]``

It (re)creates its own database (``BENCH_DATABASE_URL``, default
``bloodbank_bench`` on make bench's server, ``system_bench.dsn``), migrates it, stocks
it, then feeds ``hospital.blood.requested`` events (EMERGENCY, 2 units)
through the real handler path of one worker — ``parse_event``, the
consumer's inbox dedup and transaction, the decision with its row locks, the
outbox (decision + stock events) — without Kafka in the way. It prints
decisions per second, then a second, instrumented pass's time breakdown.
What it leaves out (polling the broker, storing offsets, the relay thread
publishing the outbox in the same process) ``bench/worker_bench.py`` measures:
one real worker draining events from Apache Kafka.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(BASE_DIR.parent / "scripts"))
sys.path.insert(0, str(BASE_DIR.parent / "bench"))

from system_bench import dsn  # noqa: E402 - the server make bench uses, reached the same way

BENCH_URL = os.environ.get("BENCH_DATABASE_URL", dsn("bloodbank_bench"))
os.environ["DATABASE_URL"] = BENCH_URL
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def recreate_database() -> None:
    import psycopg2

    url = urlparse(BENCH_URL)
    admin = psycopg2.connect(
        host=url.hostname, port=url.port or 5432, user=url.username, password=url.password, dbname="postgres"
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        name = url.path.lstrip("/")
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


class FakeMessage:
    """What the consumer reads from a Kafka message, without the broker."""

    def __init__(self, value: bytes, offset: int) -> None:
        self._value, self._offset = value, offset

    def value(self) -> bytes:
        return self._value

    def topic(self) -> str:
        return "hospital.blood.requested"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


def stock(units: int) -> None:
    from inventory.din import make_din
    from inventory.models import Unit
    from inventory.services import ensure_stock_keys

    now = datetime.now(UTC)
    groups = ["O+", "A+", "B+", "O-", "A-", "AB+", "B-", "AB-"]
    rows = []
    for i in range(units):
        # Most stock is O+ (what the benchmark asks for); the rest makes the indexes realistic.
        group = "O+" if i % 4 else groups[(i // 4) % len(groups)]
        rows.append(
            Unit(
                din=make_din("Z9999", 26, i),
                component="RED_CELLS",
                blood_group=group,
                volume_ml=280,
                collected_at=now - timedelta(days=3),
                expires_at=now + timedelta(days=5, minutes=i % 5000),
                batch=f"BENCH-{i // 500}",
            )
        )
    Unit.objects.bulk_create(rows, batch_size=2000)
    ensure_stock_keys()


def events(count: int) -> list[bytes]:
    from shared_events.envelope import build_event
    from shared_events.testing import requested_payload
    from shared_events.topics import REQUESTED

    out = []
    for _ in range(count):
        payload = requested_payload(hospital_id="0b6f3a5e-4a2d-5a8e-9a57-1d1c5b9d4c11", requested_by="bench")
        request_id = payload["request_id"]
        out.append(build_event(REQUESTED, payload, source="hospital-service", subject=request_id).to_bytes())
    return out


def feed(raw_events: list[bytes], handlers=None, *, batch_size: int = 1) -> float:
    """Handle every event as the worker's consumer does; return the elapsed seconds.

    ``batch_size=1`` is a quiet worker (one event, one transaction);
    the consumer's default batch size is what a worker with a backlog does.
    """
    from allocation.handlers import HANDLERS

    from shared_events.django.consumer import EventConsumer

    handlers = handlers or HANDLERS
    consumer = EventConsumer(handlers=handlers, stop=threading.Event(), group_id=f"bench-{uuid.uuid4().hex[:6]}")
    messages = [FakeMessage(raw, offset) for offset, raw in enumerate(raw_events)]
    started = time.perf_counter()
    for start in range(0, len(messages), batch_size):
        batch = messages[start : start + batch_size]
        assert len(consumer.process_batch(batch)) == len(batch)
    return time.perf_counter() - started


def _do_nothing(event) -> None:
    """The consumer's own floor: inbox check + insert + commit."""


def _publish_two(event) -> None:
    """The floor plus the two outbox events a decision writes (decision + stock)."""
    from shared_events.django.outbox import publish
    from shared_events.topics import INVENTORY_UPDATED, REJECTED

    now = datetime.now(UTC)
    decision = {
        "request_id": event.data.request_id,
        "hospital_id": event.data.hospital_id,
        "reason_code": "INSUFFICIENT_STOCK",
        "detail": "bench",
        "decided_at": now,
    }
    publish(REJECTED, decision, subject=str(event.data.request_id))
    stock = {
        "component": "RED_CELLS",
        "blood_group": "O+",
        "available_units": 1,
        "expiring_within_72h": 0,
        "level": "OK",
        "as_of": now,
    }
    publish(INVENTORY_UPDATED, stock, subject="RED_CELLS:O+")


def bare_transactions(count: int) -> float:
    """The floor: lock 2 units SKIP LOCKED, update them, insert an outbox row, commit."""
    from django.db import connection, transaction

    from shared_events.django.outbox import enqueue_message

    started = time.perf_counter()
    for _ in range(count):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM inventory_unit WHERE component='RED_CELLS' AND blood_group='O+' "
                "AND status='AVAILABLE' ORDER BY expires_at, din LIMIT 2 FOR UPDATE SKIP LOCKED"
            )
            ids = [row[0] for row in cursor.fetchall()]
            cursor.execute("UPDATE inventory_unit SET status='ISSUED' WHERE id = ANY(%s)", [ids])
            enqueue_message(topic="bench", key="k", value=b"{}", headers={}, event_type="bench")
    return time.perf_counter() - started


def classify(sql: str) -> str:
    text = " ".join(sql.split())
    upper = text.upper()
    if upper.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO")):
        return "savepoints"
    if "PG_NOTIFY" in upper:
        return "pg_notify (outbox wake-up)"
    for table, name in [
        ("shared_events_inboxevent", "inbox"),
        ("shared_events_outboxevent", "outbox"),
        ("allocation_bankrequest", "request row"),
        ("allocation_allocation", "allocation rows"),
        ("inventory_unitstatuschange", "unit history"),
        ("inventory_stocksnapshot", "stock snapshot"),
        ("inventory_unit", "units"),
    ]:
        if f'"{table}"' in text or f" {table} " in f" {text} ":
            verb = upper.split(" ", 1)[0]
            if verb == "SELECT" and "SKIP LOCKED" in upper:
                verb = "SELECT FOR UPDATE SKIP LOCKED"
            elif verb == "SELECT" and "FOR UPDATE" in upper:
                verb = "SELECT FOR UPDATE"
            elif verb == "SELECT" and "COUNT(" in upper:
                verb = "SELECT COUNT"
            return f"{name}: {verb}"
    return "other: " + upper[:40]


def instrumented(raw_events: list[bytes]) -> tuple[float, dict[str, list[float]], float]:
    from django.db import connection

    timings: dict[str, list[float]] = defaultdict(list)

    def wrapper(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timings[classify(sql)].append(time.perf_counter() - started)

    commits: list[float] = []
    real_commit = connection._commit

    def timed_commit():
        started = time.perf_counter()
        try:
            return real_commit()
        finally:
            commits.append(time.perf_counter() - started)

    connection._commit = timed_commit
    try:
        with connection.execute_wrapper(wrapper):
            elapsed = feed(raw_events)
    finally:
        connection._commit = real_commit
    timings["COMMIT"] = commits
    return elapsed, timings, sum(commits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="decisions in the timed pass")
    args = parser.parse_args()
    n = args.requests
    recreate_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from shared_events.envelope import parse_event

    call_command("migrate", verbosity=0)
    breakdown_n = max(200, n // 3)
    bare_n = 2000
    # O+ is 3 units in 4; every decision (two timed passes) and bare transaction takes 2.
    stock(units=(2 * n + breakdown_n + 200 + bare_n) * 2 * 4 // 3 + 2000)
    print(f"PostgreSQL {connection.cursor().connection.server_version}, database {connection.settings_dict['NAME']}")

    feed(events(200))  # warm up: connection, caches, plans
    raw = events(n)
    started = time.perf_counter()
    for item in raw:
        parse_event(item)
    parse_cost = (time.perf_counter() - started) / n
    from shared_events.django.consumer import EventConsumer

    batch_size = EventConsumer.__init__.__kwdefaults__["batch_size"]
    print(f"\nfull decisions (inbox + decision + allocation + outbox + stock events), one worker, {n} requests:")
    elapsed = feed(raw)
    print(f"  one event per transaction (a quiet worker): {n / elapsed:6.0f}/s  {elapsed / n * 1000:6.3f} ms each")
    elapsed = feed(events(n), batch_size=batch_size)
    print(f"  a backlog, {batch_size} events per transaction:  {n / elapsed:6.0f}/s  {elapsed / n * 1000:6.3f} ms each")
    print(
        "  (decisions/s of the handler path alone: no broker, no offsets, no outbox relay publishing;\n"
        "   one whole worker through Apache Kafka, the figure the goal of >= 400/s is about: bench/worker_bench.py)"
    )

    bare = bare_transactions(bare_n)
    print(f"\nfor comparison ({bare_n} each):")
    print(f"  bare allocation transaction (lock 2 SKIP LOCKED, update, 1 outbox row, commit): {bare_n / bare:5.0f}/s")
    from shared_events.topics import REQUESTED

    floor = feed(events(bare_n), {REQUESTED: _do_nothing})
    print(f"  consumer path with a handler that does nothing (inbox + commit):            {bare_n / floor:5.0f}/s")
    two = feed(events(bare_n), {REQUESTED: _publish_two})
    print(f"  ... and a handler that only publishes a decision and a stock event:         {bare_n / two:5.0f}/s")

    elapsed, timings, _commit = instrumented(events(breakdown_n))
    per = elapsed / breakdown_n * 1000
    sql_total = sum(sum(values) for values in timings.values())
    print(f"\nwhere the time goes (instrumented pass, {breakdown_n} decisions, {per:.3f} ms each):")
    print(f"  {'part':48} {'stmts/dec':>9} {'ms/dec':>7} {'share':>6}")
    for name, values in sorted(timings.items(), key=lambda item: -sum(item[1])):
        ms = sum(values) / breakdown_n * 1000
        print(f"  {name:48} {len(values) / breakdown_n:9.2f} {ms:7.3f} {ms / per:6.1%}")
    python_ms = per - sql_total / breakdown_n * 1000
    print(f"  {'python (ORM, pydantic event building, Django)':48} {'':9} {python_ms:7.3f} {python_ms / per:6.1%}")
    print(f"  {'of which parse_event (envelope + payload)':48} {'':9} {parse_cost * 1000:7.3f}")
    statements = sum(len(values) for name, values in timings.items() if name != "COMMIT") / breakdown_n
    print(f"  round trips per decision: {statements:.1f} statements + 1 commit")
    connection.close()


if __name__ == "__main__":
    main()
