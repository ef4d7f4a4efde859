"""OpenAPI examples for the bank's unit, stock and threshold API (ISBT 128 DINs with valid check characters)."""

from drf_spectacular.utils import OpenApiExample

UNIT = {
    "id": "a1d3c6e2-5b7f-4c08-9e21-3f4a5b6c7d80",
    "din": "G123426000421",
    "component": "RED_CELLS",
    "blood_group": "O-",
    "volume_ml": 280,
    "collected_at": "2026-11-08T09:30:00Z",
    "expires_at": "2026-12-20T09:30:00Z",
    "batch": "BATCH-2611-07",
    "status": "AVAILABLE",
    "allocated_to": None,
    "received_at": "2026-11-08T15:00:00Z",
    "updated_at": "2026-11-08T15:00:00Z",
}
_QUARANTINED = UNIT | {
    "status": "QUARANTINED",
    "updated_at": "2026-11-29T06:40:00Z",
    "history": [
        {
            "from_status": "AVAILABLE",
            "to_status": "QUARANTINED",
            "at": "2026-11-29T06:40:00Z",
            "by": "bank_admin",
            "reason": "Donor look-back: repeat test pending",
            "request_id": None,
        }
    ],
}

UNIT_LISTED = OpenApiExample("An available unit", value=UNIT, response_only=True)
UNIT_DETAIL = OpenApiExample("A quarantined unit with its history", value=_QUARANTINED, response_only=True)
RECEIVE = OpenApiExample(
    "Receive an O- red cell unit",
    value={
        "din": "G123426000421",
        "component": "RED_CELLS",
        "blood_group": "O-",
        "volume_ml": 280,
        "collected_at": "2026-11-08T09:30:00Z",
        "batch": "BATCH-2611-07",
    },
    request_only=True,
)
RECEIVED = OpenApiExample("Received", value=UNIT, response_only=True, status_codes=["201"])
QUARANTINE = OpenApiExample("Quarantine", value={"reason": "Donor look-back: repeat test pending"}, request_only=True)
RELEASE = OpenApiExample("Release", value={"reason": "Repeat test negative"}, request_only=True)
DISCARD = OpenApiExample("Discard", value={"reason": "Bag damaged in transit"}, request_only=True)

# A list body or response: drf-spectacular wraps each example value in the list itself, so the value is one item.
STOCK = OpenApiExample(
    "O- red cells, low",
    value={
        "component": "RED_CELLS",
        "blood_group": "O-",
        "available_units": 4,
        "allocated_units": 2,
        "expiring_within_72h": 1,
        "low_threshold": 10,
        "critical_threshold": 3,
        "level": "LOW",
    },
    response_only=True,
)
THRESHOLD = {"component": "RED_CELLS", "blood_group": "O-", "low_threshold": 12, "critical_threshold": 4}
THRESHOLDS_CHANGE = OpenApiExample("Raise O- red cells", value=THRESHOLD, request_only=True)
THRESHOLDS_NOW = OpenApiExample("Thresholds", value=THRESHOLD, response_only=True)
