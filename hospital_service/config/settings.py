"""hospital_service settings: everything from the environment (see shared_events.django.service_settings)."""

import os
from pathlib import Path

from csp.constants import NONE, SELF

from shared_events.django.service_settings import service_settings

# Watchdog: how often the worker looks for requests still PENDING (seconds).
REQUEST_REPUBLISH_CHECK_SECONDS = float(os.environ.get("REQUEST_REPUBLISH_CHECK_SECONDS", "5"))

globals().update(
    service_settings(
        base_dir=Path(__file__).resolve().parent.parent,
        service="hospital",
        title="Hospital service API",
        apps=["hospitals", "blood_requests", "local_inventory", "bank_stock", "recalls", "dashboard"],
        handlers="blood_requests.handlers.HANDLERS",
        periodic=[
            ("blood_requests.services.republish_stale_requests", REQUEST_REPUBLISH_CHECK_SECONDS),
            ("local_inventory.services.expire_local_units", 60.0),
        ],
    )
)

# Watchdog: a request still PENDING this long is published again (then backing off).
REQUEST_REPUBLISH_AFTER_SECONDS = float(os.environ.get("REQUEST_REPUBLISH_AFTER_SECONDS", "60"))
LOGIN_REDIRECT_URL = "/dashboard/"

# Content-Security-Policy (django-csp): the dashboard and the login page load only this service's own
# script, style and data, no inline code, and cannot be framed; an injected <script> would not run.
# Django admin and Swagger UI (inline scripts of their own) keep Django's defaults.
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1, "csp.middleware.CSPMiddleware")  # noqa: F821
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/admin/", "/api/docs/"],
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
    },
}
# Watchdog back-off cap: repeats wait 60 s, 120 s, 240 s ... up to this.
REQUEST_REPUBLISH_MAX_SECONDS = float(os.environ.get("REQUEST_REPUBLISH_MAX_SECONDS", "900"))

SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {  # noqa: F821 - set by service_settings above
    "RequestStatusEnum": "blood_requests.models.STATUS_CHOICES",
    "LocalUnitStatusEnum": "local_inventory.models.LocalUnitStatus",
    "StockLevelEnum": "shared_events.enums.StockLevel",
    "WasteReasonEnum": "local_inventory.models.WASTE_REASON_CHOICES",
    "CancelReasonCodeEnum": "blood_requests.models.CANCEL_REASON_CHOICES",
    "RequestBloodGroupEnum": "blood_requests.models.REQUEST_BLOOD_GROUP_CHOICES",
    "BloodGroupEnum": "blood_requests.models.BLOOD_GROUP_CHOICES",
    "PackStatusEnum": "blood_requests.models.PACK_STATUS_CHOICES",
    "SpecialRequirementEnum": "blood_requests.models.SPECIAL_REQUIREMENT_CHOICES",
    "UnitAttributeEnum": "blood_requests.models.UNIT_ATTRIBUTE_CHOICES",
    "AntigenEnum": "blood_requests.models.ANTIGEN_CHOICES",
}

# The token check that also reads the user's hospital in the same (prepared) query: hospitals.token_auth.
REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = [  # noqa: F821 - set by service_settings above
    "hospitals.token_auth.StaffTokenAuthentication",
    *REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"][1:],  # noqa: F821
]
