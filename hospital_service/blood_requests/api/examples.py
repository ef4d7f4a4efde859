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

CREATE_EMERGENCY_RELEASE = OpenApiExample(
    "Emergency release: 2 units of red cells, group unknown",
    description="A trauma patient not yet typed: group O red cells (RhD-negative, as `rhd_negative_required` "
    "defaults to true), issued uncrossmatched. EMERGENCY and the authorising clinician are required.",
    value={
        "blood_group": "UNKNOWN",
        "component": "RED_CELLS",
        "units": 2,
        "priority": "EMERGENCY",
        "authorised_by": "Dr A. Okafor",
        "patient_reference": "TRAUMA-UNK-0007",
        "indication": "TRAUMA",
    },
    request_only=True,
)
CREATE_MTP = OpenApiExample(
    "Massive transfusion protocol",
    description="No component or units: the bank sends packs (4 red cells + 4 plasma; from pack 2 also "
    "platelets). Pack 1 is asked for with the request; `next-pack` asks for each further one.",
    value={
        "protocol": "MTP",
        "blood_group": "A+",
        "group_confirmed": True,
        "priority": "EMERGENCY",
        "authorised_by": "Dr A. Okafor",
        "patient_reference": "MRN-000123",
        "indication": "OBSTETRIC_HAEMORRHAGE",
    },
    request_only=True,
)
CREATE_SCHEDULED_REQUIREMENTS = OpenApiExample(
    "SCHEDULED: irradiated, K-negative red cells for a confirmed A+ patient",
    value={
        "blood_group": "A+",
        "component": "RED_CELLS",
        "units": 2,
        "priority": "SCHEDULED",
        "needed_by": "2026-11-30T08:00:00Z",
        "group_confirmed": True,
        "special_requirements": ["IRRADIATED"],
        "antigen_negative": ["K"],
        "patient_reference": "MRN-004417",
        "indication": "ONCOLOGY",
    },
    request_only=True,
)

_PENDING = {
    "id": REQUEST_ID,
    "hospital_id": HOSPITAL_ID,
    "protocol": "STANDARD",
    "blood_group": "O-",
    "component": "RED_CELLS",
    "units": 2,
    "priority": "EMERGENCY",
    "needed_by": None,
    "allow_partial": True,
    "authorised_by": "",
    "group_confirmed": False,
    "rhd_negative_required": True,
    "special_requirements": [],
    "antigen_negative": [],
    "patient_reference": "MRN-000123",
    "indication": "TRAUMA",
    "reason": "Major haemorrhage protocol, trauma bay 2",
    "status": "PENDING",
    "uncrossmatched": False,
    "packs": [],
    "mtp_stopped_at": None,
    "mtp_stopped_by": None,
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
            "product_code": "E0398V00",
            "division": "00",
            "special_attributes": ["LEUKOREDUCED"],
        },
        {
            "unit_id": "b2e4d7f3-6c80-4d19-8f32-4a5b6c7d8e91",
            "din": "G123426000422",
            "component": "RED_CELLS",
            "blood_group": "O-",
            "expires_at": "2026-12-21T00:00:00Z",
            "batch": "BATCH-2611-07",
            "product_code": "E0398V00",
            "division": "00",
            "special_attributes": ["LEUKOREDUCED"],
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
    {key: a[key] for key in ("unit_id", "din", "product_code", "division", "component", "blood_group", "expires_at")}
    | {"special_attributes": a["special_attributes"]}
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
RECEIVE_PACK = OpenApiExample(
    "The scanned DINs of MTP pack 2",
    value={"pack": 2, "dins": ["G123426000431", "G123426000432", "G123426000433", "G123426000434"]},
    request_only=True,
)

MTP_REQUEST_ID = "8c1d2e3f-4a5b-4c6d-9e7f-8a9b0c1d2e3f"
_MTP_UNITS = [
    {
        "unit_id": f"c3f5e8a4-7d91-4e2a-8b43-5c6d7e8f9a{n:02d}",
        "din": f"G1234260004{n:02d}",
        "product_code": "E0398V00" if n < 4 else "E2555V00",
        "division": "00",
        "component": "RED_CELLS" if n < 4 else "PLASMA",
        "blood_group": "O-" if n < 4 else "AB+",
        "expires_at": "2026-12-20T00:00:00Z",
        "batch": "BATCH-2611-09",
        "special_attributes": ["LEUKOREDUCED"] if n < 4 else [],
    }
    for n in range(8)
]
_MTP_PENDING = _PENDING | {
    "id": MTP_REQUEST_ID,
    "protocol": "MTP",
    "blood_group": "UNKNOWN",
    "component": None,
    "units": None,
    "authorised_by": "Dr A. Okafor",
    "patient_reference": "TRAUMA-UNK-0008",
    "reason": "",
    "packs": [
        {
            "pack": 1,
            "status": "REQUESTED",
            "requested_at": "2026-11-29T06:00:00.120000Z",
            "decision": None,
            "units_requested": None,
            "units_allocated": 0,
            "uncrossmatched": False,
            "allocations": [],
            "released_unit_ids": [],
            "dispatched_units": [],
            "dispatched_at": None,
            "received_at": None,
        }
    ],
}
CREATED_MTP = OpenApiExample(
    "Created: an MTP, group unknown, pack 1 asked for", value=_MTP_PENDING, response_only=True, status_codes=["201"]
)
_PACK_1_DECISION = {
    "reason_code": None,
    "detail": "all 8 unit(s) allocated, UNCROSSMATCHED (emergency release)",
    "decided_at": "2026-11-29T06:00:00.150000Z",
}
MTP_ACTIVE = OpenApiExample(
    "MTP active: pack 1 received, pack 2 asked for",
    value=_MTP_PENDING
    | {
        "status": "MTP_ACTIVE",
        "uncrossmatched": True,
        "decision": _PACK_1_DECISION,
        "units_allocated": 8,
        "allocations": _MTP_UNITS,
        "dispatched_units": [{k: v for k, v in u.items() if k != "batch"} for u in _MTP_UNITS],
        "dispatched_at": "2026-11-29T06:10:00Z",
        "status_history": [
            *_PENDING["status_history"],
            {
                "status": "MTP_ACTIVE",
                "at": "2026-11-29T06:00:00.150000Z",
                "detail": "pack 1: bank approved: " + _PACK_1_DECISION["detail"],
            },
            {"status": "MTP_ACTIVE", "at": "2026-11-29T06:10:00Z", "detail": "pack 1: bank dispatched 8 unit(s)"},
            {
                "status": "MTP_ACTIVE",
                "at": "2026-11-29T06:25:00Z",
                "detail": "pack 1: 8 unit(s) received by stmary_staff (DINs scanned)",
            },
            {"status": "MTP_ACTIVE", "at": "2026-11-29T06:40:00Z", "detail": "pack 2: requested by stmary_staff"},
        ],
        "packs": [
            _MTP_PENDING["packs"][0]
            | {
                "status": "RECEIVED",
                "decision": _PACK_1_DECISION,
                "units_requested": 8,
                "units_allocated": 8,
                "uncrossmatched": True,
                "allocations": _MTP_UNITS,
                "dispatched_units": [{k: v for k, v in u.items() if k != "batch"} for u in _MTP_UNITS],
                "dispatched_at": "2026-11-29T06:10:00Z",
                "received_at": "2026-11-29T06:25:00Z",
            },
            _MTP_PENDING["packs"][0] | {"pack": 2, "requested_at": "2026-11-29T06:40:00Z"},
        ],
        "updated_at": "2026-11-29T06:40:00Z",
    },
    response_only=True,
)
_MTP_ACTIVE = MTP_ACTIVE.value
MTP_STOPPED = OpenApiExample(
    "MTP stopped: pack 2 not decided, so nothing more comes; pack 1 was received, so FULFILLED",
    value=_MTP_ACTIVE
    | {
        "status": "FULFILLED",
        "mtp_stopped_at": "2026-11-29T06:50:00Z",
        "mtp_stopped_by": "stmary_staff",
        "received_at": "2026-11-29T06:50:00Z",
        "packs": [_MTP_ACTIVE["packs"][0], _MTP_ACTIVE["packs"][1] | {"status": "STOPPED"}],
        "status_history": [
            *_MTP_ACTIVE["status_history"],
            {
                "status": "MTP_ACTIVE",
                "at": "2026-11-29T06:50:00Z",
                "detail": "MTP stopped by stmary_staff: the bank releases the units it has not dispatched",
            },
            {
                "status": "FULFILLED",
                "at": "2026-11-29T06:50:00Z",
                "detail": "MTP stopped and every dispatched pack received",
            },
        ],
        "updated_at": "2026-11-29T06:50:00Z",
    },
    response_only=True,
)
