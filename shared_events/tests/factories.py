"""Valid event payloads for the delivery tests."""

import uuid
from datetime import UTC, datetime


def requested_payload(**overrides) -> dict:
    payload = {
        "request_id": str(uuid.uuid4()),
        "hospital_id": str(uuid.uuid4()),
        "hospital_name": "St Mary's Hospital",
        "blood_group": "O+",
        "component": "RED_CELLS",
        "units": 2,
        "priority": "EMERGENCY",
        "allow_partial": True,
        "requested_by": "stmary_staff",
        "requested_at": datetime.now(UTC).isoformat(),
    }
    return payload | overrides
