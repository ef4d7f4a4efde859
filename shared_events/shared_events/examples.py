"""One valid example event of every type, always the same (the AsyncAPI examples, docs/events.md, tests).

The story they tell: St Mary's asks for 2 units of O+ red cells in an emergency; the blood
bank allocates them (one O- substitute), which drops O+ red cells to LOW; the hospital then
cancels and the units are released; the notification service tells the hospital.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from shared_events import topics
from shared_events.envelope import CloudEvent, build_event

REQUEST_ID = "5f0c8c1e-8d7a-4c57-9a55-3c9f1e2b7d41"
HOSPITAL_ID = "0b9d6a57-5f8e-5b8c-9a4e-2f1c6d3e7a90"
UNIT_IDS = ("9a3e2c61-1f4b-4d7e-8c2a-6b5d4e3f2a10", "c7d8e9f0-2a3b-4c5d-8e6f-7a8b9c0d1e2f")
NOTIFICATION_ID = "3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7"
INVENTORY_KEY = "RED_CELLS:O+"
DINS = ("G123426000421", "G123426000422")
RECALL_ID = "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d"
_UNIT = {
    "unit_id": UNIT_IDS[0],
    "din": DINS[0],
    "component": "RED_CELLS",
    "blood_group": "O+",
    "expires_at": "2026-04-20T23:59:00Z",
}
_EXAMPLES = UUID("2f8e5c1a-7b3d-4e6f-9a0b-1c2d3e4f5a6b")  # event ids: uuid5 of the type in this namespace

PAYLOADS: dict[str, dict[str, Any]] = {
    topics.REQUESTED: {
        "request_id": REQUEST_ID,
        "hospital_id": HOSPITAL_ID,
        "hospital_name": "St Mary's Hospital",
        "blood_group": "O+",
        "component": "RED_CELLS",
        "units": 2,
        "priority": "EMERGENCY",
        "needed_by": None,
        "allow_partial": True,
        "authorised_by": "dr_okafor",
        "group_confirmed": True,
        "rhd_negative_required": True,
        "special_requirements": ["IRRADIATED"],
        "antigen_negative": ["K"],
        "patient_reference": "MRN-00042",
        "indication": "TRAUMA",
        "requested_by": "stmary_staff",
        "requested_at": "2026-03-14T09:26:53Z",
    },
    topics.APPROVED: {
        "request_id": REQUEST_ID,
        "hospital_id": HOSPITAL_ID,
        "units_requested": 2,
        "units_allocated": 2,
        "partial": False,
        "allocations": [
            {
                "unit_id": UNIT_IDS[0],
                "din": "A999926012345T",
                "component": "RED_CELLS",
                "blood_group": "O+",
                "expires_at": "2026-04-10T00:00:00Z",
                "batch": "B-2026-031",
                "product_code": "E0398V00",
                "division": "00",
                "special_attributes": ["IRRADIATED", "LEUKOREDUCED"],
            },
            {
                "unit_id": UNIT_IDS[1],
                "din": "A999926012346R",
                "component": "RED_CELLS",
                "blood_group": "O-",
                "expires_at": "2026-04-11T00:00:00Z",
                "batch": "B-2026-031",
                "product_code": "E0398V00",
                "division": "00",
                "special_attributes": ["IRRADIATED", "LEUKOREDUCED"],
            },
        ],
        "decided_at": "2026-03-14T09:26:54Z",
        "uncrossmatched": False,
    },
    topics.REJECTED: {
        "request_id": REQUEST_ID,
        "hospital_id": HOSPITAL_ID,
        "reason_code": "INSUFFICIENT_STOCK",
        "detail": "2 units of RED_CELLS O+ requested; 0 compatible units available",
        "decided_at": "2026-03-14T09:26:54Z",
    },
    topics.INVENTORY_UPDATED: {
        "component": "RED_CELLS",
        "blood_group": "O+",
        "available_units": 4,
        "expiring_within_72h": 1,
        "level": "LOW",
        "as_of": "2026-03-14T09:26:54Z",
        "days_of_supply": 1.3,
    },
    topics.LOW_STOCK: {
        "component": "RED_CELLS",
        "blood_group": "O+",
        "level": "LOW",
        "available_units": 4,
        "low_threshold": 5,
        "critical_threshold": 2,
        "as_of": "2026-03-14T09:26:54Z",
        "days_of_supply": 1.3,
        "low_days": 3.0,
        "critical_days": 1.0,
    },
    topics.CANCELLED: {
        "request_id": REQUEST_ID,
        "hospital_id": HOSPITAL_ID,
        "reason_code": "NOT_REQUIRED",
        "cancelled_by": "stmary_staff",
        "cancelled_at": "2026-03-14T09:40:00Z",
    },
    topics.RELEASED: {
        "request_id": REQUEST_ID,
        "hospital_id": HOSPITAL_ID,
        "unit_ids": list(UNIT_IDS),
        "reason": "CANCELLED",
        "released_at": "2026-03-14T09:40:01Z",
    },
    topics.UNITS_DISPATCHED: {
        "request_id": REQUEST_ID,
        "hospital_id": HOSPITAL_ID,
        "units": [_UNIT, _UNIT | {"unit_id": UNIT_IDS[1], "din": DINS[1], "blood_group": "O-"}],
        "dispatched_by": "bank_admin",
        "dispatched_at": "2026-03-14T09:35:00Z",
    },
    topics.UNITS_RECEIVED: {
        "request_id": REQUEST_ID,
        "hospital_id": HOSPITAL_ID,
        "dins": list(DINS),
        "unit_ids": list(UNIT_IDS),
        "received_by": "stmary_staff",
        "received_at": "2026-03-14T09:52:00Z",
    },
    topics.UNIT_FATE: {
        "request_id": REQUEST_ID,
        "hospital_id": HOSPITAL_ID,
        "unit": _UNIT,
        "fate": "TRANSFUSED",
        "patient_reference": "MRN-00042",
        "started_at": "2026-03-14T10:05:00Z",
        "ended_at": "2026-03-14T11:40:00Z",
        "recorded_by": "stmary_staff",
        "recorded_at": "2026-03-14T11:45:00Z",
    },
    topics.FATE_OVERDUE: {
        "hospital_id": HOSPITAL_ID,
        "overdue_after_hours": 72,
        "units": [
            _UNIT
            | {
                "unit_id": UNIT_IDS[1],
                "din": DINS[1],
                "request_id": REQUEST_ID,
                "dispatched_at": "2026-03-14T09:35:00Z",
            }
        ],
        "as_of": "2026-03-17T09:35:00Z",
    },
    topics.RECALL_ISSUED: {
        "recall_id": RECALL_ID,
        "reason": "DONOR_INFECTION",
        "severity": "HIGH",
        "dins": [DINS[1]],
        "hospitals": [
            {
                "hospital_id": HOSPITAL_ID,
                "units": [
                    _UNIT | {"unit_id": UNIT_IDS[1], "din": DINS[1], "request_id": REQUEST_ID, "bank_status": "ISSUED"}
                ],
            },
        ],
        "issued_by": "bank_admin",
        "issued_at": "2026-03-18T08:00:00Z",
    },
    topics.RECALL_ACKNOWLEDGED: {
        "recall_id": RECALL_ID,
        "hospital_id": HOSPITAL_ID,
        "units": [{"unit_id": UNIT_IDS[1], "din": DINS[1], "state": "QUARANTINED_HERE"}],
        "acknowledged_by": "stmary_staff",
        "acknowledged_at": "2026-03-18T08:20:00Z",
    },
    topics.MTP_PACK_REQUESTED: {
        "request_id": REQUEST_ID,
        "hospital_id": HOSPITAL_ID,
        "pack": 2,
        "requested_by": "stmary_staff",
        "requested_at": "2026-03-14T10:02:00Z",
    },
    topics.MTP_STOPPED: {
        "request_id": REQUEST_ID,
        "hospital_id": HOSPITAL_ID,
        "stopped_by": "stmary_staff",
        "stopped_at": "2026-03-14T10:48:00Z",
    },
    topics.NOTIFICATION_DELIVERED: {
        "notification_id": NOTIFICATION_ID,
        "audience": f"hospital:{HOSPITAL_ID}",
        "channel": "in_app",
        "source_event_id": "1d2c3b4a-5968-4776-8594-a3b2c1d0e9f8",
        "source_event_type": topics.RELEASED,
        "delivered_at": "2026-03-14T09:40:02Z",
    },
}

SOURCES = {"hospital": "hospital-service", "bloodbank": "bloodbank-service", "notification": "notification-service"}


def subject(event_type: str) -> str:
    """The example event's subject, which is also its Kafka key."""
    key = topics.TOPICS[event_type].key
    return {
        "request id": REQUEST_ID,
        "component:blood_group": INVENTORY_KEY,
        "notification id": NOTIFICATION_ID,
        "DIN": DINS[0],
        "hospital id": HOSPITAL_ID,
        "recall id": RECALL_ID,
    }[key]


def example_event(event_type: str) -> CloudEvent:
    """The example of ``event_type``: a fixed id and time, correlated with the request."""
    payload = PAYLOADS[event_type]
    times = [value for name, value in payload.items() if name.endswith(("_at", "as_of")) and isinstance(value, str)]
    return build_event(
        event_type,
        payload,
        source=SOURCES[topics.TOPICS[event_type].producer],
        subject=subject(event_type),
        correlation_id=REQUEST_ID,
        event_id=uuid5(_EXAMPLES, event_type),
        time=datetime.fromisoformat(times[-1]),
    )
