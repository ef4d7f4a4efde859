"""Vein to vein over the real processes: request, approval, dispatch, receipt by DIN scan, fates, the bank's
trace; then a recall that ends accounted for (transfusion.md sections 1-4)."""

from __future__ import annotations

from datetime import UTC, datetime

from api_client import ApiClient

from shared_events.testing import wait_for

DEADLINE = 60


def _request(client: ApiClient, units: int) -> str:
    body = {"blood_group": "O+", "component": "RED_CELLS", "units": units, "priority": "EMERGENCY"}
    created = client.post("/api/v1/blood-requests/", body)
    assert created.status == 201, created.body
    return created.body["id"]


def _status(client: ApiClient, request_id: str, *wanted: str) -> dict | None:
    body = client.get(f"/api/v1/blood-requests/{request_id}/").body
    return body if body["status"] in wanted else None


def _dispatched(hospital: ApiClient, bank: ApiClient, units: int) -> dict:
    request_id = _request(hospital, units)
    wait_for(lambda: _status(hospital, request_id, "APPROVED"), timeout=DEADLINE, message="the approval")
    dispatch = bank.post(f"/api/v1/requests/{request_id}/dispatch/", {"courier": "blood bike 3"})
    assert dispatch.status == 201, dispatch.body
    return wait_for(lambda: _status(hospital, request_id, "DISPATCHED"), timeout=DEADLINE, message="the dispatch")


def _local_units(hospital: ApiClient, request_id: str) -> list[dict]:
    units = hospital.get("/api/v1/inventory/units/").body["results"]
    return sorted((u for u in units if u["source_request_id"] == request_id), key=lambda u: u["din"])


def _steps(bank: ApiClient, din: str) -> list[str]:
    return [event["step"] for event in bank.get(f"/api/v1/units/{din}/trace/").body["units"][0]["events"]]


def test_every_unit_is_traced_from_the_bank_to_its_fate(stack, stmary):
    bank = ApiClient.login(stack.url("bloodbank"), "bank_admin")
    request = _dispatched(stmary, bank, units=2)
    dins = [unit["din"] for unit in request["dispatched_units"]]

    wrong = stmary.post(f"/api/v1/blood-requests/{request['id']}/receive/", {"dins": dins[:1]})
    assert wrong.status == 409 and wrong.body["missing_dins"] == dins[1:]
    received = stmary.post(f"/api/v1/blood-requests/{request['id']}/receive/", {"dins": dins})
    assert received.status == 200 and received.body["status"] == "FULFILLED", received.body

    transfused, wasted = _local_units(stmary, request["id"])
    now = datetime.now(UTC).isoformat()
    assert (
        stmary.post(
            f"/api/v1/inventory/units/{transfused['id']}/transfuse/",
            {"patient_reference": "MRN-4411", "started_at": now},
        ).status
        == 200
    )
    assert stmary.post(f"/api/v1/inventory/units/{wasted['id']}/discard/", {"reason": "DAMAGED"}).status == 200

    wait_for(
        lambda: _steps(bank, transfused["din"])[-3:] == ["DISPATCHED", "RECEIVED_BY_HOSPITAL", "TRANSFUSED"],
        timeout=DEADLINE,
        message="the bank's trace of the transfused unit",
    )
    wait_for(lambda: _steps(bank, wasted["din"])[-1] == "WASTED", timeout=DEADLINE, message="the wasted unit")
    trace = bank.get(f"/api/v1/units/{transfused['din']}/trace/").body["units"][0]
    assert trace["status"] == "TRANSFUSED"
    assert trace["events"][-1]["by"] == "stmary_staff"
    assert trace["events"][-1]["detail"]["patient_reference"] == "MRN-4411"


def test_a_recall_is_quarantined_answered_and_closed_once_accounted_for(stack, stmary):
    bank = ApiClient.login(stack.url("bloodbank"), "bank_admin")
    request = _dispatched(stmary, bank, units=1)
    [din] = [unit["din"] for unit in request["dispatched_units"]]
    assert stmary.post(f"/api/v1/blood-requests/{request['id']}/receive/", {"dins": [din]}).status == 200

    recall = bank.post("/api/v1/recalls/", {"dins": [din], "reason": "DONOR_INFECTION", "severity": "HIGH"})
    assert recall.status == 201, recall.body
    recall_url = f"/api/v1/recalls/{recall.body['id']}/"

    def answered(outcome: str):
        units = bank.get(recall_url).body["units"]
        return units if all(u["outcome"] == outcome for u in units) else None

    wait_for(lambda: answered("QUARANTINED_HERE"), timeout=DEADLINE, message="the hospital's quarantine")
    [unit] = _local_units(stmary, request["id"])
    assert unit["status"] == "QUARANTINED"
    transfuse = {"patient_reference": "MRN-1", "started_at": datetime.now(UTC).isoformat()}
    assert stmary.post(f"/api/v1/inventory/units/{unit['id']}/transfuse/", transfuse).status == 409
    assert bank.post(f"{recall_url}close/").status == 409  # not accounted for yet

    assert stmary.post(f"/api/v1/inventory/units/{unit['id']}/discard/", {"reason": "RECALLED"}).status == 200
    wait_for(lambda: answered("WASTED"), timeout=DEADLINE, message="the hospital's answer: wasted")
    closed = bank.post(f"{recall_url}close/")
    assert closed.status == 200 and closed.body["status"] == "CLOSED"

    notices = ApiClient.login(stack.url("notification"), "stmary_staff")
    alert = wait_for(
        lambda: next(
            (n for n in notices.get("/api/v1/notifications/").body["results"] if n["kind"] == "RECALL_ISSUED"), None
        ),
        timeout=DEADLINE,
        message="the hospital's recall alert",
    )
    assert alert["severity"] == "CRITICAL"
