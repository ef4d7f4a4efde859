"""bloodbank_service settings: everything from the environment (see shared_events.django.service_settings)."""

import os
from pathlib import Path

from shared_events.django.service_settings import service_settings

globals().update(
    service_settings(
        base_dir=Path(__file__).resolve().parent.parent,
        service="bloodbank",
        title="Blood bank service API",
        apps=["inventory", "allocation", "traceability"],
        handlers="allocation.handlers.HANDLERS",
        periodic=[
            ("inventory.services.expire_units", 60.0),
            # SCHEDULED requests wait so that EMERGENCY ones are decided first (and see WHEN_CAUGHT_UP).
            ("allocation.services.decide_waiting_requests", 0.5),
            # The stock counts decisions left unpublished (STOCK_EVENT_INTERVAL_SECONDS below).
            ("inventory.services.publish_coalesced_stock", 1.0),
            # Every issued unit needs a fate: hospitals with overdue ones are told (at most daily each).
            ("traceability.services.announce_overdue_fates", 3600.0),
        ],
        # As soon as the consumer has handled every event it fetched, the SCHEDULED requests among them.
        when_caught_up=["allocation.services.decide_new_waiting_requests"],
    )
)

# Name the status choice sets once in the OpenAPI schema (units and requests both have a "status").
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {  # noqa: F821 - defined by service_settings above
    "UnitStatusEnum": "inventory.models.UnitStatus",
    "RequestStatusEnum": "allocation.models.RequestStatus",
    "BloodGroupEnum": "inventory.models.GROUP_CHOICES",
    "RequestBloodGroupEnum": "allocation.models.REQUEST_GROUP_CHOICES",  # the eight groups and UNKNOWN
    "UnitAttributeEnum": "inventory.models.ATTRIBUTE_CHOICES",
    "RecallReasonEnum": "traceability.models.RECALL_REASON_CHOICES",
    "BankDiscardReasonEnum": "inventory.api.serializers.BANK_DISCARD_REASON_CHOICES",
}

# transfusion.md section 5: group A plasma goes to a recipient of unknown or unconfirmed group only if
# it is HT_NEGATIVE (high-titre anti-B negative). Section 7: an MTP pack is this many units of each
# component; platelets from pack MTP_PLATELETS_FROM_PACK on (UK 4:4:1).
A_PLASMA_REQUIRES_HT_NEGATIVE = os.environ.get("A_PLASMA_REQUIRES_HT_NEGATIVE", "true").lower() in ("1", "true", "yes")
MTP_PACK_RED_CELLS = int(os.environ.get("MTP_PACK_RED_CELLS", "4"))
MTP_PACK_PLASMA = int(os.environ.get("MTP_PACK_PLASMA", "4"))
MTP_PACK_PLATELETS = int(os.environ.get("MTP_PACK_PLATELETS", "1"))
MTP_PLATELETS_FROM_PACK = int(os.environ.get("MTP_PLATELETS_FROM_PACK", "2"))

# transfusion.md: units ISSUED this long without a fate are overdue; a returned red-cell or
# whole-blood unit out of controlled storage longer than this is not taken back into stock.
FATE_OVERDUE_HOURS = int(os.environ.get("FATE_OVERDUE_HOURS", "72"))
RETURN_LIMIT_MINUTES = int(os.environ.get("RETURN_LIMIT_MINUTES", "30"))

# transfusion.md section 6: an irradiated red-cell unit keeps at most this many days after irradiation
# (14: BSH, EDQM; 28: 21 CFR 610.53).
IRRADIATED_RED_CELL_DAYS = int(os.environ.get("IRRADIATED_RED_CELL_DAYS", "14"))

# events.md, bloodbank.inventory.updated: a decision that changes only a key's count publishes it when the key was
# last published at least this long ago; otherwise the stock flush (every second) sends the latest count. A level
# crossing is published at once. 0: every change at once.
STOCK_EVENT_INTERVAL_SECONDS = float(os.environ.get("STOCK_EVENT_INTERVAL_SECONDS", "2"))
