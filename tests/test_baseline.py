"""The bench's bare pipeline (bench/baseline.py) on the real broker and PostgreSQL: requests end to end.

``make bench`` measures the whole system against it (bench/results/README.md). This checks that
each of its processes does its part, and that the bench's own queries (bench/measure.py) read its
tables as they read the hospital's.
"""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from baseline import BarePipeline
from databases import fresh_database
from measure import decided_rows, pending_count

from shared_events.kafka_server import free_port
from shared_events.testing import wait_for

SERVICES = ("hospital", "bloodbank", "notification")
O_POS_RED_CELLS = {"priority": "EMERGENCY", "blood_group": "O+", "component": "RED_CELLS", "units": 2}


@pytest.fixture
def pipeline(kafka_bootstrap: str, tmp_path: Path) -> Iterator[BarePipeline]:
    suffix = os.environ.get("TEST_DB_SUFFIX", "")
    bare = BarePipeline(
        database_urls={service: fresh_database(f"e2e_bare_{service}{suffix}") for service in SERVICES},
        kafka_env={name: value for name, value in os.environ.items() if name.startswith("KAFKA_")},  # the admin
        port=free_port(),
        log_dir=tmp_path,
        topic_prefix=f"bare{uuid.uuid4().hex[:8]}.",
    )
    bare.prepare({("RED_CELLS", "O+"): 3})
    bare.start()
    try:
        bare.wait_ready()
        yield bare
    finally:
        bare.stop()


def post(url: str, body: dict) -> str:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")  # noqa: S310 - local
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own local URL
        assert response.status == 201
        return json.loads(response.read())["id"]


def decided(pipeline: BarePipeline, request_id: str) -> dict:
    hospital = pipeline.database_urls["hospital"]
    wait_for(lambda: pending_count(hospital, [request_id]) == 0, timeout=60, message=f"{request_id} decided")
    return decided_rows(hospital, None, [request_id])[request_id]


def scalar(dsn: str, sql: str) -> int:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cursor:
        cursor.execute(sql)
        (value,) = cursor.fetchone()
    conn.close()
    return value


def test_the_bare_pipeline_allocates_records_and_notifies_each_request(pipeline):
    first = decided(pipeline, post(pipeline.url, O_POS_RED_CELLS))
    second = decided(pipeline, post(pipeline.url, O_POS_RED_CELLS))  # 1 unit left of 3

    assert (first["status"], second["status"]) == ("APPROVED", "REJECTED")
    assert first["priority"] == "EMERGENCY"
    assert first["created"] <= first["updated"]  # the bench's end to end: from the POST to this update
    assert scalar(pipeline.database_urls["bloodbank"], "SELECT units FROM stock") == 1
    notifications = "SELECT count(*) FROM notification"
    wait_for(lambda: scalar(pipeline.database_urls["notification"], notifications) == 2, message="2 notifications")
