"""Emergency release, the confirmed-group rule, special requirements, MTP and ISBT 128 product identity, over the
real processes and their REST APIs, tried as a new user would (transfusion.md sections 5 to 9)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from api_client import ApiClient

from shared_events.testing import wait_for

DEADLINE = 60
_SEQUENCE = itertools.count(1)


@pytest.fixture(scope="module")
def bank(stack) -> ApiClient:
    return ApiClient.login(stack.url("bloodbank"), "bank_admin")


def _in(*, days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def _din() -> str:
    """A fresh 13-character DIN of this test's facility (T1234), collected this year."""
    return f"T1234{datetime.now(UTC):%y}{next(_SEQUENCE):06d}"


def _receive_units(bank: ApiClient, count: int, **fields) -> list[dict]:
    """``count`` units received at the bank with ``fields`` (product code, group, attributes ...), each a new DIN."""
    now = datetime.now(UTC)
    body = {
        "product_code": "E0398V00",
        "blood_group": "O-",
        "volume_ml": 280,
        "collected_at": (now - timedelta(days=2)).isoformat(),
        "expires_at": (now + timedelta(days=20)).isoformat(),
        "batch": "T-ISSUE-14",
    } | fields
    received = []
    for _ in range(count):
        response = bank.post("/api/v1/units/", body | {"din": fields.get("din") or _din()})
        assert response.status == 201, response.body
        received.append(response.body)
    return received


def _decided(hospital: ApiClient, request_id: str, *statuses: str) -> dict | None:
    body = hospital.get(f"/api/v1/blood-requests/{request_id}/").body
    return body if body["status"] in statuses else None


def _request(hospital: ApiClient, body: dict, *statuses: str) -> dict:
    created = hospital.post("/api/v1/blood-requests/", body)
    assert created.status == 201, created.body
    return wait_for(
        lambda: _decided(hospital, created.body["id"], *statuses), timeout=DEADLINE, message=f"a decision in {statuses}"
    )


def _bank_unit(bank: ApiClient, unit_id: str) -> dict:
    response = bank.get(f"/api/v1/units/{unit_id}/")
    assert response.status == 200, response.body
    return response.body


def _notification(client: ApiClient, request_id: str, kind: str) -> dict | None:
    page = client.get("/api/v1/notifications/").body
    return next((n for n in page["results"] if n.get("request_id") == request_id and n["kind"] == kind), None)


def test_a_trauma_call_of_unknown_group_gets_uncrossmatched_group_o_negative_red_cells(stack, stmary, bank):
    _receive_units(bank, 2, blood_group="O-")
    decided = _request(
        stmary,
        {
            "blood_group": "UNKNOWN",
            "component": "RED_CELLS",
            "units": 2,
            "priority": "EMERGENCY",
            "authorised_by": "dr_okafor",
            "indication": "TRAUMA",
        },
        "APPROVED",
        "PARTIALLY_APPROVED",
    )
    assert decided["uncrossmatched"] is True
    assert {a["blood_group"] for a in decided["allocations"]} == {"O-"}  # RhD-negative required by default

    notices = ApiClient.login(stack.url("notification"), "stmary_staff")
    alert = wait_for(
        lambda: _notification(notices, decided["id"], "EMERGENCY_RELEASE_APPROVED"),
        timeout=DEADLINE,
        message="the hospital's emergency-release alert",
    )
    assert alert["severity"] == "CRITICAL"


def test_unknown_group_plasma_is_ab_or_high_titre_negative_a(stmary, bank):
    _receive_units(bank, 1, product_code="E2555V00", blood_group="AB+", expires_at=_in(days=300))
    _receive_units(
        bank, 1, product_code="E2555V00", blood_group="A+", expires_at=_in(days=300), special_attributes=["HT_NEGATIVE"]
    )
    decided = _request(
        stmary,
        {
            "blood_group": "UNKNOWN",
            "component": "PLASMA",
            "units": 2,
            "priority": "EMERGENCY",
            "authorised_by": "dr_okafor",
        },
        "APPROVED",
        "PARTIALLY_APPROVED",
    )
    for allocation in decided["allocations"]:
        unit = _bank_unit(bank, allocation["unit_id"])
        assert unit["blood_group"].startswith("AB") or (
            unit["blood_group"].startswith("A") and "HT_NEGATIVE" in unit["special_attributes"]
        ), unit


def test_an_a_positive_patient_typed_once_gets_group_o_red_cells_and_a_confirmed_one_gets_group_a(stmary, bank):
    _receive_units(bank, 2, blood_group="A+")
    _receive_units(bank, 2, blood_group="O+")
    body = {"blood_group": "A+", "component": "RED_CELLS", "units": 2, "priority": "EMERGENCY"}

    unconfirmed = _request(stmary, body, "APPROVED", "PARTIALLY_APPROVED")
    assert unconfirmed["group_confirmed"] is False
    assert {a["blood_group"] for a in unconfirmed["allocations"]} <= {"O+", "O-"}

    confirmed = _request(stmary, body | {"group_confirmed": True}, "APPROVED", "PARTIALLY_APPROVED")
    assert {a["blood_group"] for a in confirmed["allocations"]} == {"A+"}  # the identical group first


def test_a_k_negative_irradiated_request_gets_only_units_that_are_both_or_is_rejected_for_its_needs(stmary, bank):
    now = datetime.now(UTC)
    _receive_units(bank, 3, blood_group="B+")  # compatible, but neither irradiated nor typed K-negative
    wanted = {
        "blood_group": "B+",
        "component": "RED_CELLS",
        "units": 2,
        "priority": "EMERGENCY",
        "group_confirmed": True,
        "special_requirements": ["IRRADIATED"],
        "antigen_negative": ["K"],
    }
    # Compatible units exist, none washed, HbS-negative and Jka-negative as well: rejected for its needs.
    needs_more = {"special_requirements": ["IRRADIATED", "WASHED", "HBS_NEGATIVE"], "antigen_negative": ["K", "Jka"]}
    rejected = _request(stmary, wanted | needs_more | {"allow_partial": False}, "REJECTED")
    assert rejected["decision"]["reason_code"] == "NO_UNITS_MEETING_REQUIREMENTS"

    _receive_units(
        bank,
        2,
        blood_group="B+",
        special_attributes=["IRRADIATED"],
        antigen_negative=["K"],
        irradiated_at=(now - timedelta(days=1)).isoformat(),
        expires_at=(now + timedelta(days=12)).isoformat(),
    )
    approved = _request(stmary, wanted, "APPROVED")
    for allocation in approved["allocations"]:
        unit = _bank_unit(bank, allocation["unit_id"])
        assert "IRRADIATED" in unit["special_attributes"] and "K" in unit["antigen_negative"], unit


def test_an_mtp_gets_three_packs_then_stops_and_ends_fulfilled_once_every_dispatched_pack_is_received(stmary, bank):
    _receive_units(bank, 12, blood_group="O-")
    _receive_units(bank, 12, product_code="E2555V00", blood_group="AB-", expires_at=_in(days=300))
    _receive_units(bank, 2, product_code="E3087V00", blood_group="O-", expires_at=_in(days=4))
    body = {"protocol": "MTP", "blood_group": "UNKNOWN", "priority": "EMERGENCY", "authorised_by": "dr_okafor"}
    mtp = _request(stmary, body, "MTP_ACTIVE")
    request_id = mtp["id"]

    for pack in (2, 3):
        asked = stmary.post(f"/api/v1/blood-requests/{request_id}/next-pack/")
        assert asked.status in (200, 202), asked.body
        wait_for(
            lambda pack=pack: _pack(stmary, request_id, pack, decided=True), timeout=DEADLINE, message=f"pack {pack}"
        )
    packs = stmary.get(f"/api/v1/blood-requests/{request_id}/").body["packs"]
    assert [p["pack"] for p in packs] == [1, 2, 3]
    components = {p["pack"]: sorted(a["component"] for a in p["allocations"]) for p in packs}
    assert components[1] == ["PLASMA"] * 4 + ["RED_CELLS"] * 4
    assert components[2] == ["PLASMA"] * 4 + ["PLATELETS"] + ["RED_CELLS"] * 4

    for pack in (1, 2):
        assert bank.post(f"/api/v1/requests/{request_id}/dispatch/", {"pack": pack}).status == 201
        dispatched = wait_for(
            lambda pack=pack: _pack(stmary, request_id, pack, dispatched=True),
            timeout=DEADLINE,
            message=f"pack {pack} dispatched",
        )
        dins = [unit["din"] for unit in dispatched["dispatched_units"]]
        received = stmary.post(f"/api/v1/blood-requests/{request_id}/receive/", {"pack": pack, "dins": dins})
        assert received.status == 200, received.body

    assert stmary.post(f"/api/v1/blood-requests/{request_id}/stop-mtp/").status in (200, 202)
    wait_for(lambda: _decided(stmary, request_id, "FULFILLED"), timeout=DEADLINE, message="FULFILLED after the stop")
    pack3 = {a["unit_id"] for a in _pack(stmary, request_id, 3)["allocations"]}
    wait_for(
        lambda: all(_bank_unit(bank, unit_id)["status"] == "AVAILABLE" for unit_id in pack3),
        timeout=DEADLINE,
        message="pack 3 (never dispatched) released at the bank",
    )
    assert stmary.post(f"/api/v1/blood-requests/{request_id}/next-pack/").status == 409


def _pack(hospital: ApiClient, request_id: str, number: int, *, decided: bool = False, dispatched: bool = False):
    packs = hospital.get(f"/api/v1/blood-requests/{request_id}/").body["packs"]
    pack = next((p for p in packs if p["pack"] == number), None)
    if pack is None or (decided and pack["status"] == "REQUESTED") or (dispatched and not pack["dispatched_units"]):
        return None
    return pack


def test_two_components_of_one_donation_and_the_splits_of_a_unit_are_separate_units(bank):
    din = _din()
    red_cells, plasma = (
        _receive_units(bank, 1, din=din)[0],
        _receive_units(bank, 1, din=din, product_code="E2555V00", expires_at=_in(days=300))[0],
    )
    assert (red_cells["component"], plasma["component"]) == ("RED_CELLS", "PLASMA")
    assert red_cells["id"] != plasma["id"]
    split_din = _din()
    splits = [
        _receive_units(bank, 1, din=split_din, product_code=f"E3087V{division}", expires_at=_in(days=4))[0]
        for division in ("A0", "B0")
    ]
    assert [s["division"] for s in splits] == ["A0", "B0"]
    again = bank.post("/api/v1/units/", _unit_body(din, "E0398V00"))
    assert again.status == 400, again.body


@pytest.mark.parametrize(
    "body, fields",
    [
        (
            {"blood_group": "UNKNOWN", "priority": "SCHEDULED", "authorised_by": "dr_okafor", "needed_by": _in(days=1)},
            {"blood_group", "priority"},
        ),
        ({"blood_group": "UNKNOWN"}, {"authorised_by"}),
        ({"protocol": "MTP", "blood_group": "UNKNOWN", "component": None, "units": None}, {"authorised_by"}),
        ({"antigen_negative": ["Q"]}, {"antigen_negative"}),
        ({"component": "WHOLE_BLOOD"}, {"component", "group_confirmed"}),  # whole blood needs a confirmed group
    ],
)
def test_bad_requests_get_field_errors_and_change_nothing(stmary, body, fields):
    before = stmary.get("/api/v1/blood-requests/").body["count"]
    base = {"blood_group": "O+", "component": "RED_CELLS", "units": 1, "priority": "EMERGENCY"}
    response = stmary.post("/api/v1/blood-requests/", {k: v for k, v in (base | body).items() if v is not None})
    assert response.status == 400 and fields & set(response.body), response.body
    assert stmary.get("/api/v1/blood-requests/").body["count"] == before


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"product_code": "X0398V00"}, "product_code"),
        ({"product_code": "E0398V0"}, "product_code"),
        ({"expires_at": (datetime.now(UTC) - timedelta(days=3)).isoformat()}, "expires_at"),
        ({"antigen_negative": ["k", "Kell"]}, "antigen_negative"),
    ],
)
def test_bad_units_get_field_errors_at_the_bank(bank, fields, field):
    din = _din()
    response = bank.post("/api/v1/units/", _unit_body(din, "E0398V00") | fields)
    assert response.status == 400 and field in response.body, response.body
    assert bank.get(f"/api/v1/units/?din={din}").body["count"] == 0


def _unit_body(din: str, product_code: str) -> dict:
    now = datetime.now(UTC)
    return {
        "din": din,
        "product_code": product_code,
        "blood_group": "O+",
        "volume_ml": 280,
        "collected_at": (now - timedelta(days=2)).isoformat(),
        "expires_at": (now + timedelta(days=20)).isoformat(),
        "batch": "T-ISSUE-14",
    }
