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
        # No decision waits on this service: its consumer batches and its relay rounds (notification.delivered
        # is a record) may gather 50 ms of events, in fewer transactions and Kafka requests.
        relay_linger=0.05,
        consumer_batch_wait=0.05,
        # ... and so may its fetches: the broker answers when 50 ms have passed (or 64 KiB are there), not at every
        # message, for a consumer that reads 15 topics (the broker authorises each topic of each fetch).
        consumer_settings={"fetch.wait.max.ms": 50, "fetch.min.bytes": 65536},
    )
)

# A CRITICAL notification unread this long is re-raised once as an escalation.
ESCALATE_AFTER_SECONDS = float(os.environ.get("ESCALATE_AFTER_SECONDS", "300"))

# The live feed (Server-Sent Events): database poll, heartbeat comment, lifetime before the client
# reconnects (with Last-Event-ID), and the origins allowed to read it cross-origin (e.g. the dashboard).
NOTIFICATION_STREAM_POLL_SECONDS = float(os.environ.get("NOTIFICATION_STREAM_POLL_SECONDS", "0.5"))
NOTIFICATION_STREAM_HEARTBEAT_SECONDS = float(os.environ.get("NOTIFICATION_STREAM_HEARTBEAT_SECONDS", "15"))
NOTIFICATION_STREAM_MAX_SECONDS = float(os.environ.get("NOTIFICATION_STREAM_MAX_SECONDS", "300"))
NOTIFICATION_STREAM_RETRY_MS = int(os.environ.get("NOTIFICATION_STREAM_RETRY_MS", "3000"))
# A ticket for ?ticket= (cross-origin EventSource) is good this long, once; open streams per user, at most.
NOTIFICATION_STREAM_TICKET_SECONDS = float(os.environ.get("NOTIFICATION_STREAM_TICKET_SECONDS", "30"))
NOTIFICATION_STREAMS_PER_USER = int(os.environ.get("NOTIFICATION_STREAMS_PER_USER", "10"))
# Streams of one process opening at once (each holds a database connection while it authenticates); the rest wait.
NOTIFICATION_STREAM_OPENINGS_AT_ONCE = int(os.environ.get("NOTIFICATION_STREAM_OPENINGS_AT_ONCE", "4"))
# How soon an open stream ends after its user logged out everywhere or changed password.
NOTIFICATION_STREAM_REVOKE_CHECK_SECONDS = float(os.environ.get("NOTIFICATION_STREAM_REVOKE_CHECK_SECONDS", "5"))
NOTIFICATION_STREAM_CORS_ORIGINS = [
    origin.strip() for origin in os.environ.get("NOTIFICATION_STREAM_CORS_ORIGINS", "").split(",") if origin.strip()
]

# The SSE feed is a plain async view: document it in the OpenAPI schema through a hook.
SPECTACULAR_SETTINGS = {
    **SPECTACULAR_SETTINGS,  # noqa: F821 - set by service_settings above
    "POSTPROCESSING_HOOKS": [
        "notifications.api.schema.add_stream_path",
        *SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"],  # noqa: F821
    ],
}
