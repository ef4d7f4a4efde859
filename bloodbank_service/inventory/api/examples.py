"""OpenAPI examples for the bank's unit, stock and threshold API (ISBT 128 DINs with valid check characters)."""

from drf_spectacular.utils import OpenApiExample

UNIT = {
    "id": "a1d3c6e2-5b7f-4c08-9e21-3f4a5b6c7d80",
    "din": "G123426000421",
    "product_code": "E0398V00",
    "division": "00",
    "component": "RED_CELLS",
    "blood_group": "O-",
    "volume_ml": 280,
    "collected_at": "2026-11-08T09:30:00Z",
    "expires_at": "2026-12-20T09:30:00Z",
    "batch": "BATCH-2611-07",
    "special_attributes": ["CMV_NEGATIVE"],
    "antigen_negative": ["K"],
    "irradiated_at": None,
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
    "Receive an O- red cell unit, CMV-negative and K-negative",
    value={
        "din": "G123426000421",
        "product_code": "E0398V00",
        "blood_group": "O-",
        "volume_ml": 280,
        "collected_at": "2026-11-08T09:30:00Z",
        "expires_at": "2026-12-20T09:30:00Z",
        "batch": "BATCH-2611-07",
        "special_attributes": ["CMV_NEGATIVE"],
        "antigen_negative": ["K"],
    },
    request_only=True,
)
RECEIVE_SPLIT = OpenApiExample(
    "Receive the first split of a platelet unit (division A0)",
    value={
        "din": "G123426000421",
        "product_code": "E3087VA0",
        "blood_group": "O-",
        "volume_ml": 140,
        "collected_at": "2026-11-08T09:30:00Z",
        "expires_at": "2026-11-13T09:30:00Z",
        "batch": "BATCH-2611-07",
    },
    request_only=True,
)
RECEIVE_COMPONENT_ONLY = OpenApiExample(
    "Receive plasma by component (its default code, division 00)",
    value={
        "din": "G123426000421",
        "component": "PLASMA",
        "blood_group": "O-",
        "volume_ml": 250,
        "collected_at": "2026-11-08T09:30:00Z",
        "expires_at": "2027-11-08T09:30:00Z",
        "batch": "BATCH-2611-07",
        "special_attributes": ["HT_NEGATIVE"],
    },
    request_only=True,
)
RECEIVED = OpenApiExample("Received", value=UNIT, response_only=True, status_codes=["201"])
QUARANTINE = OpenApiExample("Quarantine", value={"reason": "Donor look-back: repeat test pending"}, request_only=True)
RELEASE = OpenApiExample("Release", value={"reason": "Repeat test negative"}, request_only=True)
DISCARD = OpenApiExample("Discard a damaged bag", value={"reason": "DAMAGED"}, request_only=True)
DISCARD_OTHER = OpenApiExample(
    "Discard for another reason", value={"reason": "OTHER", "note": "Lipaemic on inspection"}, request_only=True
)
IRRADIATE = OpenApiExample(
    "Irradiated this morning", value={"irradiated_at": "2026-11-10T07:15:00Z"}, request_only=True
)
PRODUCT = OpenApiExample(
    "Irradiated red cells",
    value={
        "pdc": "E0404",
        "component": "RED_CELLS",
        "description": "Red cells, SAGM, leukocytes reduced, irradiated",
        "attributes": ["LEUKOREDUCED", "IRRADIATED"],
        "default_shelf_life_hours": 336.0,
        "component_default": False,
        "default_product_code": "E0404V00",
    },
    response_only=True,
)

# A list body or response: drf-spectacular wraps each example value in the list itself, so the value is one item.
STOCK = OpenApiExample(
    "O- red cells, low",
    value={
        "component": "RED_CELLS",
        "blood_group": "O-",
        "available_units": 4,
        "allocated_units": 2,
        "expiring_within_72h": 1,
        "days_of_supply": 1.6,
        "low_threshold": 10,
        "critical_threshold": 3,
        "low_days": 3.0,
        "critical_days": 1.0,
        "level": "LOW",
        "by_attribute": {
            "IRRADIATED": 1,
            "CMV_NEGATIVE": 2,
            "LEUKOREDUCED": 4,
            "WASHED": 0,
            "HBS_NEGATIVE": 0,
            "HT_NEGATIVE": 0,
        },
    },
    response_only=True,
)
THRESHOLD = {
    "component": "RED_CELLS",
    "blood_group": "O-",
    "low_threshold": 12,
    "critical_threshold": 4,
    "low_days": 3.0,
    "critical_days": 1.0,
}
THRESHOLDS_CHANGE = OpenApiExample("Raise O- red cells", value=THRESHOLD, request_only=True)
THRESHOLDS_NOW = OpenApiExample("Thresholds", value=THRESHOLD, response_only=True)
