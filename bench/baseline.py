"""The bare pipeline: the yardstick ``make bench`` measures the whole system against (issue 15).

What the system does for a blood request, without its guarantees or its framework:
one HTTP view inserts the request row and produces an event; one consumer
"allocates" with one UPDATE of a stock counter and produces the decision; one
records the decision on the request row (status and ``updated_at``); one inserts a
notification row per decision. No Django, no authentication, no validation, no
outbox, inbox, history, retries or dead letters; one transaction per request or
message.

What it shares with the system, so that the difference is the guarantees and the
framework and not the settings: the machine, the Apache Kafka broker (SASL/SCRAM;
its clients log in as the broker's ``admin``), the Kafka client settings
(``shared_events.kafka_config``: idempotent producers with ``acks=all``, the same
consumer settings and offset handling), PostgreSQL with ``synchronous_commit`` on,
fresh databases, gunicorn with the hospital web's workers and threads, and the
bench's client and measurement. The request table has the hospital's name and the
columns ``bench/measure.py`` reads, so both are measured by the same queries; the
processes have the names of the system's processes they stand for, so the CPU per
process group compares row by row.

This one file is every process of the pipeline::

    gunicorn baseline:application           the view: POST /requests (201 {"id"}), GET /readyz
    python baseline.py topics                create its two topics
    python baseline.py allocate|record|notify   a consumer

and ``BarePipeline`` prepares, starts and stops them (``bench/system_bench.py`` drives it).
Settings come from the environment: ``KAFKA_*`` (as ``shared_events.kafka_config`` reads
them), ``BARE_<SERVICE>_DSN`` and ``BARE_TOPIC_PREFIX``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from shared_events import topics as registry
from shared_events.kafka_config import admin_config, consumer_config, producer_config

log = logging.getLogger("bare")
BENCH = Path(__file__).resolve().parent
PARTITIONS = registry.TOPICS[registry.REQUESTED].partitions  # as the system's request (and decision) topics
TOPICS = ("requested", "decided")

SCHEMA = {
    # The hospital's table name and the columns bench/measure.py reads.
    "hospital": """CREATE TABLE blood_requests_bloodrequest (
        id uuid PRIMARY KEY, status text NOT NULL, priority text NOT NULL, blood_group text NOT NULL,
        component text NOT NULL, units integer NOT NULL,
        created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)""",
    "bloodbank": """CREATE TABLE stock (
        component text, blood_group text, units integer NOT NULL, PRIMARY KEY (component, blood_group))""",
    "notification": """CREATE TABLE notification (
        id bigserial PRIMARY KEY, request_id uuid NOT NULL, status text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now())""",
}


def prefixed(name: str) -> str:
    """A topic's or a consumer group's name, with ``BARE_TOPIC_PREFIX`` (a test isolates its run with it)."""
    return os.environ.get("BARE_TOPIC_PREFIX", "bare.") + name


def connect(service: str) -> psycopg2.extensions.connection:
    return psycopg2.connect(os.environ[f"BARE_{service.upper()}_DSN"], options="-c synchronous_commit=on")


def _failed_delivery(err: KafkaError | None, _msg: Any) -> None:
    if err is not None:
        log.error("delivery failed: %s", err)


# -- the view ------------------------------------------------------------------------
_local = threading.local()  # one database connection per gunicorn thread
_producer: Producer | None = None
_producer_lock = threading.Lock()


def _producer_once() -> Producer:
    """One producer per gunicorn worker, made after the fork."""
    global _producer
    with _producer_lock:
        if _producer is None:
            _producer = Producer(producer_config())
    return _producer


def _respond(start_response: Callable, status: str, body: dict) -> list[bytes]:
    payload = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def application(environ: dict, start_response: Callable) -> list[bytes]:
    """POST /requests: insert the request row (PENDING), produce it; GET /readyz: 200."""
    path, method = environ.get("PATH_INFO", ""), environ["REQUEST_METHOD"]
    if path == "/readyz":
        return _respond(start_response, "200 OK", {"ready": True})
    if (method, path) != ("POST", "/requests"):
        return _respond(start_response, "404 Not Found", {})
    body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
    request = {name: body[name] for name in ("priority", "blood_group", "component", "units")}
    if getattr(_local, "db", None) is None or _local.db.closed:
        _local.db = connect("hospital")
    with _local.db, _local.db.cursor() as cursor:  # one transaction, committed on leaving
        cursor.execute(
            "INSERT INTO blood_requests_bloodrequest (id, status, priority, blood_group, component, units,"
            " created_at, updated_at) VALUES (gen_random_uuid(), 'PENDING', %(priority)s, %(blood_group)s,"
            " %(component)s, %(units)s, now(), now()) RETURNING id::text",
            request,
        )
        (request["id"],) = cursor.fetchone()
    producer = _producer_once()
    producer.produce(prefixed("requested"), key=request["id"], value=json.dumps(request), on_delivery=_failed_delivery)
    producer.poll(0)
    return _respond(start_response, "201 Created", {"id": request["id"]})


# -- the consumers -------------------------------------------------------------------
def allocate(request: dict, cursor: Any) -> dict:
    """One UPDATE of the stock counter: approved if it had the units."""
    cursor.execute(
        "UPDATE stock SET units = units - %(units)s"
        " WHERE component = %(component)s AND blood_group = %(blood_group)s AND units >= %(units)s",
        request,
    )
    return {"id": request["id"], "status": "APPROVED" if cursor.rowcount else "REJECTED"}


def record(decision: dict, cursor: Any) -> None:
    cursor.execute(
        "UPDATE blood_requests_bloodrequest SET status = %(status)s, updated_at = now() WHERE id = %(id)s", decision
    )


def notify(decision: dict, cursor: Any) -> None:
    cursor.execute("INSERT INTO notification (request_id, status) VALUES (%(id)s, %(status)s)", decision)


@dataclass(frozen=True)
class Role:
    """A consumer: what it does with each message, in which database, what it reads and what it writes."""

    handle: Callable[[dict, Any], dict | None]
    database: str
    consumes: str
    produces: str | None = None


ROLES = {
    "allocate": Role(allocate, "bloodbank", "requested", produces="decided"),
    "record": Role(record, "hospital", "decided"),
    "notify": Role(notify, "notification", "decided"),
}


def consume(name: str) -> None:
    """Handle ``name``'s topic message by message until SIGTERM: one transaction each, then the offset."""
    role = ROLES[name]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    db = connect(role.database)
    consumer = Consumer(consumer_config(prefixed(name)))
    consumer.subscribe([prefixed(role.consumes)])
    producer = Producer(producer_config()) if role.produces else None
    try:
        while not stop.is_set():
            msg = consumer.poll(0.1)
            if producer is not None:
                producer.poll(0)
            if msg is None:
                continue
            if msg.error():
                log.warning("consumer error: %s", msg.error())
                continue
            with db, db.cursor() as cursor:
                out = role.handle(json.loads(msg.value()), cursor)
            if producer is not None:
                value = json.dumps(out)
                producer.produce(prefixed(role.produces), key=msg.key(), value=value, on_delivery=_failed_delivery)
            consumer.store_offsets(msg)
    finally:
        consumer.close()
        if producer is not None:
            producer.flush(10)
        db.close()


def create_topics() -> None:
    client = AdminClient(admin_config())
    wanted = [NewTopic(prefixed(name), num_partitions=PARTITIONS, replication_factor=-1) for name in TOPICS]
    for name, future in client.create_topics(wanted, operation_timeout=30).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            log.info("topic %s exists", name)


# -- the launcher ----------------------------------------------------------------------
@dataclass
class BarePipeline:
    """The four processes on ``port`` (the view) and the broker ``kafka_env`` names.

    ``database_urls``: a fresh, empty PostgreSQL database per service. ``kafka_env``:
    ``KAFKA_BOOTSTRAP_SERVERS`` and a login that may create, write and read its topics.
    """

    database_urls: dict[str, str]
    kafka_env: dict[str, str]
    port: int
    log_dir: Path
    topic_prefix: str = "bare."
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/requests"

    def env(self) -> dict[str, str]:
        databases = {f"BARE_{service.upper()}_DSN": url for service, url in self.database_urls.items()}
        return os.environ | self.kafka_env | databases | {"BARE_TOPIC_PREFIX": self.topic_prefix}

    def prepare(self, stock: dict[tuple[str, str], int]) -> None:
        """The tables, the stock (units per (component, blood group)) and the topics."""
        for service, url in self.database_urls.items():
            with psycopg2.connect(url) as conn, conn.cursor() as cursor:
                cursor.execute(SCHEMA[service])
                if service == "bloodbank":
                    rows = [(component, group, units) for (component, group), units in stock.items()]
                    cursor.executemany("INSERT INTO stock VALUES (%s, %s, %s)", rows)
            conn.close()
        done = subprocess.run([sys.executable, __file__, "topics"], env=self.env(), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the bare pipeline's topics:\n{done.stderr}")

    def start(self) -> None:
        from stack import web_command

        # The hospital web's gunicorn: its command line (workers, threads) and settings (hospital_service/
        # gunicorn.conf.py, which gunicorn reads from its folder), another application.
        web = web_command("hospital", self.port)
        web[web.index("config.wsgi")] = "baseline:application"
        web += ["--config", "python:shared_events.gunicorn_config"]
        commands = {
            "hospital-web": web,
            "bloodbank-worker": [sys.executable, __file__, "allocate"],
            "hospital-worker": [sys.executable, __file__, "record"],
            "notification-worker": [sys.executable, __file__, "notify"],
        }
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name, command in commands.items():
            with (self.log_dir / f"bare-{name}.log").open("ab") as out:  # the child keeps its own copy
                self.processes[name] = subprocess.Popen(
                    command, cwd=BENCH, env=self.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            dead = [name for name, popen in self.processes.items() if popen.poll() is not None]
            if dead:
                raise RuntimeError(f"bare pipeline process(es) exited: {', '.join(dead)} (logs in {self.log_dir})")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the bare view is not ready after {timeout}s") from None
                time.sleep(0.1)

    def stop(self, timeout: float = 20.0) -> None:
        for popen in self.processes.values():
            if popen.poll() is None:
                os.killpg(popen.pid, signal.SIGTERM)
        for popen in self.processes.values():
            try:
                popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(popen.pid, signal.SIGKILL)
                popen.wait()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    command = sys.argv[1] if len(sys.argv) == 2 else ""
    if command == "topics":
        create_topics()
    elif command in ROLES:
        consume(command)
    else:
        sys.exit(f"usage: {sys.argv[0]} topics|{'|'.join(ROLES)}")
