"""OpenAPI examples for the blood-request API (realistic values; patient references are opaque, never names)."""

from drf_spectacular.utils import OpenApiExample

REQUEST_ID = "3f6c2a9e-8d41-4f7b-9a55-0c1e2b7d4a10"
HOSPITAL_ID = "6b0f4c3e-2a7d-4e19-8c55-91d2f0a3b7e4"

CREATE_EMERGENCY = OpenApiExample(
    "EMERGENCY: 2 units of O- red cells",
    value={
        "blood_group": "O-",
        "component": "RED_CELLS",
        "units": 2,
        "priority": "EMERGENCY",
        "patient_reference": "MRN-000123",
        "indication": "TRAUMA",
        "reason": "Major haemorrhage protocol, trauma bay 2",
    },
    request_only=True,
)
CREATE_SCHEDULED = OpenApiExample(
    "SCHEDULED: 1 unit of A+ platelets for tomorrow",
    value={
        "blood_group": "A+",
        "component": "PLATELETS",
        "units": 1,
        "priority": "SCHEDULED",
        "needed_by": "2026-11-30T08:00:00Z",
        "allow_partial": False,
        "patient_reference": "MRN-004417",
        "indication": "SURGERY",
        "reason": "Elective cardiac surgery",
    },
    request_only=True,
)

_PENDING = {
    "id": REQUEST_ID,
    "hospital_id": HOSPITAL_ID,
    "blood_group": "O-",
    "component": "RED_CELLS",
    "units": 2,
    "priority": "EMERGENCY",
    "needed_by": None,
    "allow_partial": True,
    "patient_reference": "MRN-000123",
    "indication": "TRAUMA",
    "reason": "Major haemorrhage protocol, trauma bay 2",
    "status": "PENDING",
    "status_history": [{"status": "PENDING", "at": "2026-11-29T06:00:00.120000Z", "detail": "Requested"}],
    "decision": None,
    "units_allocated": 0,
    "allocations": [],
    "released_unit_ids": [],
    "cancel_reason_code": None,
    "dispatched_units": [],
    "dispatched_at": None,
    "received_at": None,
    "cancel_reason": "",
    "requested_by": "stmary_staff",
    "times_published": 1,
    "created_at": "2026-11-29T06:00:00.120000Z",
    "updated_at": "2026-11-29T06:00:00.120000Z",
}
_APPROVED = _PENDING | {
    "status": "APPROVED",
    "status_history": [
        *_PENDING["status_history"],
        {"status": "APPROVED", "at": "2026-11-29T06:00:00.161000Z", "detail": "2 of 2 units allocated"},
    ],
    "decision": {"reason_code": None, "detail": "2 of 2 units allocated", "decided_at": "2026-11-29T06:00:00.150000Z"},
    "units_allocated": 2,
    "allocations": [
        {
            "unit_id": "a1d3c6e2-5b7f-4c08-9e21-3f4a5b6c7d80",
            "din": "G123426000421",
            "component": "RED_CELLS",
            "blood_group": "O-",
            "expires_at": "2026-12-20T00:00:00Z",
            "batch": "BATCH-2611-07",
        },
        {
            "unit_id": "b2e4d7f3-6c80-4d19-8f32-4a5b6c7d8e91",
            "din": "G123426000422",
            "component": "RED_CELLS",
            "blood_group": "O-",
            "expires_at": "2026-12-21T00:00:00Z",
            "batch": "BATCH-2611-07",
        },
    ],
    "updated_at": "2026-11-29T06:00:00.161000Z",
}

CREATED = OpenApiExample("Created, waiting for the bank", value=_PENDING, response_only=True, status_codes=["201"])
APPROVED = OpenApiExample("Approved with 2 units", value=_APPROVED, response_only=True)
CANCEL = OpenApiExample(
    "Cancel",
    value={"reason_code": "NOT_REQUIRED", "reason": "Bleeding controlled, transfusion not needed"},
    request_only=True,
)
CANCELLED = OpenApiExample(
    "Cancelled",
    value=_APPROVED
    | {
        "status": "CANCELLED",
        "cancel_reason_code": "NOT_REQUIRED",
        "cancel_reason": "Bleeding controlled, transfusion not needed",
    },
    response_only=True,
)
_DISPATCHED_UNITS = [
    {key: a[key] for key in ("unit_id", "din", "component", "blood_group", "expires_at")}
    for a in _APPROVED["allocations"]
]
FULFILLED = OpenApiExample(
    "Received: FULFILLED",
    value=_APPROVED
    | {
        "status": "FULFILLED",
        "dispatched_units": _DISPATCHED_UNITS,
        "dispatched_at": "2026-11-29T06:20:00Z",
        "received_at": "2026-11-29T06:45:00Z",
    },
    response_only=True,
)
RECEIVE = OpenApiExample("The scanned DINs", value={"dins": ["G123426000421", "G123426000422"]}, request_only=True)
