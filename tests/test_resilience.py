"""Processes die; requests are neither lost nor doubled. Real processes, killed for real."""

from __future__ import annotations

import signal

from api_client import ApiClient

from shared_events.testing import wait_for

DEADLINE = 90
# The hospital's watchdog re-publishes a still-PENDING request quickly here.
STACK_ENV = {"REQUEST_REPUBLISH_AFTER_SECONDS": "5"}


def _request(client: ApiClient, group: str = "O+", units: int = 1) -> str:
    created = client.post(
        "/api/v1/blood-requests/",
        {"blood_group": group, "component": "RED_CELLS", "units": units, "priority": "EMERGENCY"},
    )
    assert created.status == 201, created.body
    return created.body["id"]


def _detail(client: ApiClient, request_id: str) -> dict:
    return client.get(f"/api/v1/blood-requests/{request_id}/").body


def _all_decided(client: ApiClient, ids: list[str]) -> list[dict] | None:
    details = [_detail(client, request_id) for request_id in ids]
    return details if all(d["status"] != "PENDING" for d in details) else None


def test_a_request_made_while_the_bank_worker_is_down_is_decided_when_it_returns(stack, stmary):
    stack.stop_process("bloodbank-worker")
    request_id = _request(stmary)
    assert _detail(stmary, request_id)["status"] == "PENDING"
    stack.start_process("bloodbank-worker")
    decided = wait_for(lambda: _all_decided(stmary, [request_id]), timeout=DEADLINE, message="the decision")
    assert decided[0]["status"] == "APPROVED"


def test_a_hospital_worker_killed_outright_loses_no_request(stack, stmary):
    assert stack.stop_process("hospital-worker", sig=signal.SIGKILL) == -signal.SIGKILL
    request_id = _request(stmary)  # waits in the hospital's outbox: no relay is running
    stack.start_process("hospital-worker")
    decided = wait_for(lambda: _all_decided(stmary, [request_id]), timeout=DEADLINE, message="the decision")
    assert decided[0]["status"] == "APPROVED"


def test_a_bank_worker_killed_mid_stream_neither_loses_nor_doubles_an_allocation(stack, stmary):
    groups = ["O+", "A+", "B+", "AB+", "A-", "O+", "A+", "B+", "AB+", "O+", "A+", "B+"]
    ids = [_request(stmary, group=group) for group in groups]
    wait_for(
        lambda: any(_detail(stmary, request_id)["status"] != "PENDING" for request_id in ids),
        timeout=DEADLINE,
        message="the bank deciding the first of the stream",
    )
    assert stack.stop_process("bloodbank-worker", sig=signal.SIGKILL) == -signal.SIGKILL
    stack.start_process("bloodbank-worker")
    decided = wait_for(lambda: _all_decided(stmary, ids), timeout=DEADLINE, message="every request decided")

    unit_ids = [a["unit_id"] for d in decided for a in d["allocations"]]
    assert len(unit_ids) == len(set(unit_ids)), "a unit was allocated twice"
    bank = ApiClient.login(stack.url("bloodbank"), "bank_admin")
    for detail in decided:
        seen = bank.get(f"/api/v1/requests/{detail['id']}/").body
        assert sorted(a["unit_id"] for a in seen["allocations"]) == sorted(a["unit_id"] for a in detail["allocations"])
