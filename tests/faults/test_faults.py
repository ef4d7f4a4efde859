"""Fault injection under steady load: processes killed, the broker replaced, database connections cut.

One stack for the module (real processes, PostgreSQL, a three-broker KRaft cluster:
replication factor 3, ``min.insync.replicas=2``). Each
test runs the steady load (two hospitals, 10 requests/s, EMERGENCY and SCHEDULED
mixed), injects its fault while requests keep coming, and then checks, for every
request made so far in the module, that nothing was lost or doubled
(``invariants.settle``).
"""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest
from invariants import query, settle, statuses
from stack import Stack
from steady_load import SteadyLoad, seed_units

from shared_events.testing import wait_for

# The hospital's watchdog looks every second and re-publishes a PENDING request after 3 s, 6 s, then every 12 s.
STACK_ENV = {
    "REQUEST_REPUBLISH_CHECK_SECONDS": "1",
    "REQUEST_REPUBLISH_AFTER_SECONDS": "3",
    "REQUEST_REPUBLISH_MAX_SECONDS": "12",
}
BROKER_NODES = 3
RATE = 10.0  # requests per second, both hospitals together
BANK_OUTAGE_SECONDS = 30
WORKERS = ("bloodbank-worker", "hospital-worker", "notification-worker")


@pytest.fixture(scope="module")
def load(stack: Stack) -> SteadyLoad:
    seed_units(stack, per_group=400)  # enough for every request of the module to be approved
    return SteadyLoad(stack, rate=RATE)


def _assert_all_approved(outcomes: Counter[str]) -> None:
    """Stock is ample, so every request is approved in full: a rejection would be a wrong decision."""
    assert set(outcomes) == {"APPROVED"}, outcomes


def _kill(stack: Stack, name: str) -> None:
    assert stack.stop_process(name, sig=signal.SIGKILL) == -signal.SIGKILL


def test_bank_worker_killed_mid_load_and_restarted(stack: Stack, load: SteadyLoad):
    with load.running():
        first = load.wait_for_more(30, message="requests before the kill")
        wait_for(lambda: statuses(stack, first)["APPROVED"] >= 10, timeout=60, message="the bank deciding")
        _kill(stack, "bloodbank-worker")
        killed_at = time.monotonic()
        load.wait_for_more(20, message="requests while the bank worker is dead")
        while_down = load.sent_since(killed_at)
        assert statuses(stack, while_down) == {"PENDING": len(while_down)}, "decided with no bank worker?"
        stack.start_process("bloodbank-worker")
        load.wait_for_more(30, message="requests after the restart")
    _assert_all_approved(settle(stack, load.created))


def test_hospital_worker_killed_mid_load_and_restarted(stack: Stack, load: SteadyLoad):
    with load.running():
        load.wait_for_more(20, message="requests before the kill")
        _kill(stack, "hospital-worker")
        killed_at = time.monotonic()
        load.wait_for_more(20, message="requests while the hospital worker is dead")
        while_down = load.sent_since(killed_at)
        unsent = query(
            stack,
            "hospital",
            "SELECT count(*) FROM shared_events_outboxevent WHERE sent_at IS NULL AND key = ANY(%s)",
            [while_down],
        )[0][0]
        assert unsent == len(while_down), "with no relay running, new requests wait in the outbox"
        stack.start_process("hospital-worker")
        load.wait_for_more(30, message="requests after the restart")
    _assert_all_approved(settle(stack, load.created))


def _terminate_worker_connections(stack: Stack) -> Counter[str]:
    """pg_terminate_backend on every connection the workers hold (by database and application_name)."""
    databases = [url.rsplit("/", 1)[1] for url in stack.database_urls.values()]
    rows = query(
        stack,
        "hospital",
        "SELECT application_name, pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = ANY(%s) AND application_name = ANY(%s)",
        [databases, list(WORKERS)],
    )
    return Counter(name for name, terminated in rows if terminated)


def test_workers_carry_on_when_their_database_connections_are_dropped(stack: Stack, load: SteadyLoad):
    pids = {name: stack.processes[name].popen.pid for name in WORKERS}
    with load.running():
        for _ in range(3):
            recent = load.wait_for_more(15, message="requests between two connection drops")
            wait_for(lambda r=recent: statuses(stack, r)["APPROVED"] >= 5, timeout=60, message="decisions again")
            dropped = _terminate_worker_connections(stack)
            assert set(dropped) == set(WORKERS), f"connections dropped: {dropped}"
        load.wait_for_more(20, message="requests after the last drop")
    assert {name: stack.processes[name].popen.pid for name in WORKERS if stack.processes[name].running} == pids
    _assert_all_approved(settle(stack, load.created))


def test_bank_worker_down_30_seconds_while_hospitals_keep_requesting(stack: Stack, load: SteadyLoad):
    with load.running():
        load.wait_for_more(20, message="requests before the outage")
        stack.stop_process("bloodbank-worker")
        stopped_at = time.monotonic()
        outage_ends = stopped_at + BANK_OUTAGE_SECONDS
        during = load.wait_for_more(20, message="requests during the outage")
        wait_for(
            lambda: query(
                stack,
                "hospital",
                "SELECT count(*) FROM blood_requests_bloodrequest WHERE times_published > 1 AND id::text = ANY(%s)",
                [during],
            )[0][0],
            timeout=BANK_OUTAGE_SECONDS,
            message="the watchdog re-publishing requests during the outage",
        )
        time.sleep(max(0.0, outage_ends - time.monotonic()))  # the fault is a duration: the bank stays down 30 s
        during = load.sent_since(stopped_at)
        assert statuses(stack, during) == {"PENDING": len(during)}, "decided with no bank worker?"
        stack.start_process("bloodbank-worker")
        load.wait_for_more(20, message="requests after the bank came back")
    _assert_all_approved(settle(stack, load.created))
