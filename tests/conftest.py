"""Cross-service tests: the real processes (3 web, 3 workers) on free ports, PostgreSQL, the broker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_client import ApiClient
from databases import fresh_database as _fresh_database
from stack import SERVICES, Stack

from shared_events.kafka_server import free_port

ROOT = Path(__file__).resolve().parent.parent


def start_stack(label: str, *, env: dict[str, str] | None = None, broker_nodes: int = 1) -> Stack:
    """The whole system on free ports: its own Apache Kafka, 3 web processes, 3 workers, fresh databases."""
    log_dir = ROOT / "var" / "test-logs" / label
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(
        ports={service: free_port() for service in SERVICES},
        database_urls={
            service: _fresh_database(f"e2e_{label}_{service}{os.environ.get('TEST_DB_SUFFIX', '')}")
            for service in SERVICES
        },
        broker_port=0,  # free ports
        broker_nodes=broker_nodes,
        env=env or {},
        log_dir=log_dir,
        run_dir=ROOT / "var" / "test-run" / label,
        kafka_data=ROOT / "var" / "test-run" / label / "kafka",
    )
    try:
        stack.prepare()
        stack.start()
        stack.wait_ready(timeout=90)
    except BaseException:
        stack.stop()
        raise
    return stack


@pytest.fixture(scope="session")
def shared_stack() -> Iterator[Stack]:
    """One system for every module that needs no settings of its own: a start costs half a minute."""
    stack = start_stack("shared")
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The system a module drives: the shared one, or its own when it sets ``STACK_ENV`` or ``BROKER_NODES``."""
    env, nodes = getattr(request.module, "STACK_ENV", None), getattr(request.module, "BROKER_NODES", 1)
    if env is None and nodes == 1:
        yield request.getfixturevalue("shared_stack")
        return
    stack = start_stack(request.module.__name__.removeprefix("test_"), env=env, broker_nodes=nodes)
    yield stack
    stack.stop()


@pytest.fixture
def stmary(stack: Stack) -> ApiClient:
    return ApiClient.login(stack.url("hospital"), "stmary_staff")


@pytest.fixture
def citygeneral(stack: Stack) -> ApiClient:
    return ApiClient.login(stack.url("hospital"), "citygeneral_staff")
