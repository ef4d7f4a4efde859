"""Vein to vein over the real processes: request, approval, dispatch, receipt by DIN scan, fates, returns the bank
decides, a cancel after dispatch, the bank's trace; recalls that end accounted for, one issued while a hospital's
worker is down (transfusion.md sections 1-4). After each, the traceability invariants hold across the three
databases: every dispatched unit is still held by its hospital (or on its way) and ISSUED at the bank, or has
exactly the one fate the hospital recorded; no unit a hospital holds is AVAILABLE at the bank."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from api_client import ApiClient
from traceability_invariants import assert_within, invariant_problems

from shared_events.testing import wait_for

DEADLINE = 60
_SEQUENCE = itertools.count(1)


def _assert_invariants(stack) -> None:
    assert_within(lambda: invariant_problems(stack), timeout=DEADLINE)


def _receive_units(bank: ApiClient, count: int, blood_group: str = "AB+") -> None:
    """Fresh red-cell units at the bank, so these tests never run the demo stock down."""
    now = datetime.now(UTC)
    for _ in range(count):
        body = {
            "din": f"T1313{now:%y}{next(_SEQUENCE):06d}",
            "product_code": "E0398V00",
            "blood_group": blood_group,
            "volume_ml": 280,
            "collected_at": (now - timedelta(days=2)).isoformat(),
            "expires_at": (now + timedelta(days=20)).isoformat(),
            "batch": "T-ISSUE-13",
        }
        response = bank.post("/api/v1/units/", body)
        assert response.status == 201, response.body


def _request(client: ApiClient, units: int, blood_group: str = "O+") -> str:
    body = {
        "blood_group": blood_group,
        "component": "RED_CELLS",
        "units": units,
        "priority": "EMERGENCY",
        "group_confirmed": True,
    }
    created = client.post("/api/v1/blood-requests/", body)
    assert created.status == 201, created.body
    return created.body["id"]


def _status(client: ApiClient, request_id: str, *wanted: str) -> dict | None:
    body = client.get(f"/api/v1/blood-requests/{request_id}/").body
    return body if body["status"] in wanted else None


def _dispatched(hospital: ApiClient, bank: ApiClient, units: int, blood_group: str = "O+") -> dict:
    request_id = _request(hospital, units, blood_group)
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


def _received(hospital: ApiClient, bank: ApiClient, units: int) -> tuple[dict, list[dict]]:
    """A request of ``units`` AB+ red cells, dispatched and scanned in; its local units by DIN."""
    _receive_units(bank, units)
    request = _dispatched(hospital, bank, units=units, blood_group="AB+")
    dins = [unit["din"] for unit in request["dispatched_units"]]
    received = hospital.post(f"/api/v1/blood-requests/{request['id']}/receive/", {"dins": dins})
    assert received.status == 200, received.body
    return request, _local_units(hospital, request["id"])


def _bank_status(bank: ApiClient, din: str, *wanted: str) -> dict | None:
    unit = bank.get(f"/api/v1/units/{din}/trace/").body["units"][0]
    return unit if unit["status"] in wanted else None


def _ago(minutes: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


def test_the_bank_decides_each_return_and_restocks_a_good_one_after_inspection(stack, stmary):
    """Red cells: back within 30 minutes with the cold chain intact → quarantined for inspection, then restocked;
    out 50 minutes → wasted (not required, out too long); cold chain broken → wasted (temperature excursion)."""
    bank = ApiClient.login(stack.url("bloodbank"), "bank_admin")
    _, (good, late, warm) = _received(stmary, bank, units=3)

    # The times are the hospital's: returned now (the default), out of the fridge since 20 or 50 minutes ago.
    in_time = {"left_storage_at": _ago(20), "cold_chain_intact": True}
    assert stmary.post(f"/api/v1/inventory/units/{good['id']}/return/", in_time).status == 200
    too_late = {"left_storage_at": _ago(50), "cold_chain_intact": True}
    first = stmary.post(f"/api/v1/inventory/units/{late['id']}/return/", too_late)
    repeat = stmary.post(f"/api/v1/inventory/units/{late['id']}/return/", too_late)  # a retry, not a second fate
    assert (first.status, repeat.status) == (200, 200), repeat.body
    broken = {"left_storage_at": _ago(10), "cold_chain_intact": False}
    assert stmary.post(f"/api/v1/inventory/units/{warm['id']}/return/", broken).status == 200

    quarantined = wait_for(
        lambda: _bank_status(bank, good["din"], "QUARANTINED"), timeout=DEADLINE, message="the good return"
    )
    for unit, reason in ((late, "NOT_REQUIRED_OUT_TOO_LONG"), (warm, "TEMPERATURE_EXCURSION")):
        wasted = wait_for(lambda u=unit: _bank_status(bank, u["din"], "WASTED"), timeout=DEADLINE, message=reason)
        assert [e["step"] for e in wasted["events"]][-2:] == ["RETURNED", "WASTED"]
        assert wasted["events"][-1]["detail"] == {"reason": reason}
        assert wasted["events"][-2]["by"] == "stmary_staff" and wasted["events"][-1]["by"] == "system"

    released = bank.post(f"/api/v1/units/{quarantined['unit_id']}/release/", {"reason": "inspected: bag intact"})
    assert released.status == 200 and released.body["status"] == "AVAILABLE", released.body
    steps = [e["step"] for e in _bank_status(bank, good["din"], "AVAILABLE")["events"]]
    assert steps[-6:] == ["ALLOCATED", "DISPATCHED", "RECEIVED_BY_HOSPITAL", "RETURNED", "QUARANTINED", "RESTOCKED"]
    _assert_invariants(stack)


def test_units_dispatched_before_a_cancel_stay_issued_until_each_has_its_fate(stack, stmary):
    bank = ApiClient.login(stack.url("bloodbank"), "bank_admin")
    _receive_units(bank, 2)
    request = _dispatched(stmary, bank, units=2, blood_group="AB+")
    cancelled = stmary.post(f"/api/v1/blood-requests/{request['id']}/cancel/", {"reason_code": "NOT_REQUIRED"})
    assert cancelled.status == 200 and cancelled.body["status"] == "CANCELLED", cancelled.body
    wait_for(
        lambda: bank.get(f"/api/v1/requests/{request['id']}/").body["cancelled_at"],
        timeout=DEADLINE,
        message="the bank's record of the cancel",
    )
    dins = [unit["din"] for unit in request["dispatched_units"]]
    assert all(_bank_status(bank, din, "ISSUED") for din in dins)  # never back on the shelf by a cancel
    _assert_invariants(stack)

    received = stmary.post(f"/api/v1/blood-requests/{request['id']}/receive/", {"dins": dins})
    assert received.status == 200 and received.body["status"] == "CANCELLED", received.body
    kept, unused = _local_units(stmary, request["id"])
    back = {"left_storage_at": _ago(10), "cold_chain_intact": True}
    assert stmary.post(f"/api/v1/inventory/units/{kept['id']}/return/", back).status == 200
    waste = {"reason": "NOT_REQUIRED_OUT_TOO_LONG"}
    assert stmary.post(f"/api/v1/inventory/units/{unused['id']}/discard/", waste).status == 200
    wait_for(lambda: _bank_status(bank, kept["din"], "QUARANTINED"), timeout=DEADLINE, message="the return")
    wait_for(lambda: _bank_status(bank, unused["din"], "WASTED"), timeout=DEADLINE, message="the waste")
    _assert_invariants(stack)


def test_a_recall_reaches_a_hospital_whose_worker_is_down_when_it_is_issued(stack, stmary, citygeneral):
    """St Mary's holds a recalled unit, City General has one on its way; the hospital service's worker (its only
    consumer and outbox relay) is stopped while the bank recalls them. Once it runs again, each hospital
    quarantines what it holds and answers; the unit in transit is quarantined as it is scanned in."""
    bank = ApiClient.login(stack.url("bloodbank"), "bank_admin")
    _, (held,) = _received(stmary, bank, units=1)
    _receive_units(bank, 1)
    travelling = _dispatched(citygeneral, bank, units=1, blood_group="AB+")
    [on_its_way] = [unit["din"] for unit in travelling["dispatched_units"]]

    stack.stop_process("hospital-worker")
    try:
        recall = bank.post(
            "/api/v1/recalls/", {"dins": [held["din"], on_its_way], "reason": "DONOR_INFECTION", "severity": "HIGH"}
        )
        assert recall.status == 201, recall.body
        recall_url = f"/api/v1/recalls/{recall.body['id']}/"
        assert [u["answered_at"] for u in bank.get(recall_url).body["units"]] == [None, None]
        assert stmary.get(f"/api/v1/inventory/units/{held['id']}/").body["status"] == "AVAILABLE"  # not told yet
    finally:
        stack.start_process("hospital-worker")

    def outcomes() -> dict[str, str] | None:
        units = bank.get(recall_url).body["units"]
        return {u["din"]: u["outcome"] for u in units} if all(u["answered_at"] for u in units) else None

    answered = wait_for(outcomes, timeout=DEADLINE, message="both hospitals' answers")
    assert answered == {held["din"]: "QUARANTINED_HERE", on_its_way: "IN_TRANSIT"}
    assert stmary.get(f"/api/v1/inventory/units/{held['id']}/").body["status"] == "QUARANTINED"
    scanned = citygeneral.post(f"/api/v1/blood-requests/{travelling['id']}/receive/", {"dins": [on_its_way]})
    assert scanned.status == 200, scanned.body
    [arrived] = _local_units(citygeneral, travelling["id"])
    assert arrived["status"] == "QUARANTINED"  # never usable, even though it arrived after the recall
    wait_for(
        lambda: outcomes() == {held["din"]: "QUARANTINED_HERE", on_its_way: "QUARANTINED_HERE"},
        timeout=DEADLINE,
        message="City General's answer once the unit arrived",
    )
    assert bank.post(f"{recall_url}close/").status == 409

    assert stmary.post(f"/api/v1/inventory/units/{held['id']}/discard/", {"reason": "RECALLED"}).status == 200
    back = {"left_storage_at": _ago(5), "cold_chain_intact": True}
    assert citygeneral.post(f"/api/v1/inventory/units/{arrived['id']}/return/", back).status == 200
    wait_for(
        lambda: outcomes() == {held["din"]: "WASTED", on_its_way: "RETURNED"}, timeout=DEADLINE, message="the ends"
    )
    assert bank.post(f"{recall_url}close/").status == 200
    # A recalled unit returned in time stays quarantined at the bank: never restocked.
    recalled = wait_for(
        lambda: _bank_status(bank, on_its_way, "QUARANTINED"), timeout=DEADLINE, message="the recalled return"
    )
    assert bank.post(f"/api/v1/units/{recalled['unit_id']}/release/", {"reason": "looks fine"}).status == 409
    _assert_invariants(stack)
