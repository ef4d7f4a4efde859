"""notification_service settings: everything from the environment (see shared_events.django.service_settings)."""

import os
from pathlib import Path

from shared_events.django.service_settings import service_settings

globals().update(
    service_settings(
        base_dir=Path(__file__).resolve().parent.parent,
        service="notification",
        title="Notification service API",
        apps=["notifications"],
        handlers="notifications.handlers.HANDLERS",
        periodic=[("notifications.services.escalate_unread_critical", 10.0)],
    )
)

# A CRITICAL notification unread this long is re-raised once as an escalation.
ESCALATE_AFTER_SECONDS = float(os.environ.get("ESCALATE_AFTER_SECONDS", "300"))
