"""Benchmark: events turned into notifications per second, and live-feed latency with many open streams.

Run from notification_service/ against PostgreSQL (a database ``notification_bench`` is created):

    ../.venv/bin/python bench/notify_bench.py [--events 2000] [--streams 200]

Prints: handler throughput (events/s and notifications/s, one transaction per event
as the consumer runs it), then the time from a notification's commit to its arrival
on N concurrently open SSE streams (uvicorn; the feed is woken by the commit's NOTIFY and polls
every 0.5 s as a backstop), and how many
database connections those streams hold.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

SERVICE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SERVICE_DIR))
sys.path.insert(0, str(SERVICE_DIR.parent / "scripts"))
sys.path.insert(0, str(SERVICE_DIR.parent / "bench"))

from system_bench import PG, dsn  # noqa: E402 - the server make bench uses, reached the same way

DB_NAME = "notification_bench"
DB_URL = dsn(DB_NAME)


def _setup_django() -> None:
    import psycopg2

    admin = psycopg2.connect(dbname="postgres", **PG)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME])
        if cursor.fetchone() is None:
            cursor.execute(f"CREATE DATABASE {DB_NAME}")
    admin.close()
    os.environ.update(SECRET_KEY="bench", DATABASE_URL=DB_URL, DJANGO_SETTINGS_MODULE="config.settings")  # noqa: S106
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("seed_demo", development=True, verbosity=0)


def bench_handlers(count: int) -> None:
    from django.db import transaction
    from notifications.handlers import HANDLERS
    from notifications.models import Notification
    from notifications.tests import factories

    kinds = [
        lambda: factories.requested(),
        lambda: factories.inventory_updated(available=int(time.time() * 1000) % 50),
        lambda: factories.low_stock(level="LOW", available=9),
        lambda: factories.rejected(request_id=__import__("uuid").uuid4()),
    ]
    events = [kinds[i % len(kinds)]() for i in range(count)]
    before = Notification.objects.count()
    timings = []
    started = time.perf_counter()
    for event in events:
        t0 = time.perf_counter()
        with transaction.atomic():  # as the consumer runs a handler
            HANDLERS[event.type](event)
        timings.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    made = Notification.objects.count() - before
    timings.sort()
    print(
        f"handlers: {count} events -> {made} notifications (+ coalesced updates) in {elapsed:.2f}s: "
        f"{count / elapsed:.0f} events/s; per event p50 {timings[len(timings) // 2] * 1000:.2f} ms, "
        f"p99 {timings[int(len(timings) * 0.99)] * 1000:.2f} ms"
    )


def bench_streams(streams: int, samples: int) -> None:
    from django.contrib.auth import get_user_model
    from knox.models import AuthToken
    from notifications import stream_access
    from notifications.handlers import HANDLERS
    from notifications.models import Notification
    from notifications.tests import factories

    from shared_events.demo import HOSPITALS
    from shared_events.kafka_server import free_port

    user = get_user_model().objects.get(username=HOSPITALS[0].username)
    stream_access.revoke_streams(user=user)  # a killed earlier run's streams still count until they expire
    user_token = AuthToken.objects.create(user=user)[1]
    port = free_port()
    # Every stream is this one user's here: the per-user cap (NOTIFICATION_STREAMS_PER_USER, 10) would refuse
    # all but ten of them, and the bench measures the feed's fan-out, not the cap.
    env = os.environ | {"DATABASE_URL": DB_URL, "SECRET_KEY": "bench", "NOTIFICATION_STREAMS_PER_USER": str(streams)}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--port",
            str(port),
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "1",
        ],
        cwd=SERVICE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    arrivals: dict[str, list[float]] = {}
    refused: list[int] = []
    lock = threading.Lock()
    connected = threading.Semaphore(0)

    def reader() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("GET", "/api/v1/notifications/stream/", headers={"Authorization": f"Token {user_token}"})
        response = conn.getresponse()
        if response.status != 200:
            refused.append(response.status)
        connected.release()
        while line := response.readline():
            if line.startswith(b"data: "):
                marker = line.split(b'"source_event_id":"', 1)[1][:36].decode()
                with lock:
                    arrivals.setdefault(marker, []).append(time.perf_counter())

    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        for _ in range(streams):
            threading.Thread(target=reader, daemon=True).start()
        for _ in range(streams):
            connected.acquire(timeout=30)
        if refused:
            raise RuntimeError(f"{len(refused)} of {streams} streams refused (HTTP {sorted(set(refused))})")
        time.sleep(1)  # every stream past its catch-up
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            held = cursor.fetchone()[0]
        latencies = []
        for _ in range(samples):
            event = factories.requested()
            committed = time.perf_counter()
            HANDLERS[event.type](event)  # autocommit: committed when it returns
            key = str(event.id)
            end = time.monotonic() + 10
            while time.monotonic() < end:
                with lock:
                    got = list(arrivals.get(key, []))
                if len(got) >= streams:
                    break
                time.sleep(0.005)
            latencies.extend(t - committed for t in got)
            time.sleep(0.13)  # spread samples over the poll period
        latencies.sort()
        print(
            f"live feed: {streams} open streams hold {held} database connection(s) in the web process; "
            f"commit -> arrival on every stream over {samples} notifications: "
            f"p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.0f} ms, "
            f"max {latencies[-1] * 1000:.0f} ms ({len(latencies)} deliveries, expected {streams * samples})"
        )
        print(f"(notifications in bench database: {Notification.objects.count()})")
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    _setup_django()
    bench_handlers(args.events)
    bench_streams(args.streams, args.samples)


if __name__ == "__main__":
    main()
