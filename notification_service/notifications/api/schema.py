"""OpenAPI for the live feed: it is a plain async Django view, so the schema gets it from this hook."""

from __future__ import annotations

from typing import Any

STREAM_PATH = "/api/v1/notifications/stream/"


def add_stream_path(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: document ``GET /api/v1/notifications/stream/``."""
    result.setdefault("paths", {})[STREAM_PATH] = {
        "get": {
            "operationId": "notifications_stream",
            "tags": ["notifications"],
            "summary": "Live feed of the caller's notifications (Server-Sent Events)",
            "description": (
                "Each notification created or changed for the caller's audience is sent as "
                "`id: <seq>`, `event: notification`, `data: <notification JSON>`. Reconnect with "
                "`Last-Event-ID: <seq>` (EventSource does) to get exactly what was missed; without it the "
                "feed starts at the present. Heartbeat comments keep the connection open; the server ends "
                "the stream after a few minutes and the client reconnects after `retry`. "
                "Authenticate with the token header, the session cookie, or `?ticket=`, a single-use ticket "
                "from `POST /api/v1/notifications/stream-ticket/` (EventSource clients on another origin "
                "cannot set headers; a long-lived token is never accepted in the URL). A `Last-Event-ID` "
                "beyond the newest notification is refused; a user has at most "
                "`NOTIFICATION_STREAMS_PER_USER` streams open at once."
            ),
            "parameters": [
                {"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "integer"}},
                {"name": "last_event_id", "in": "query", "required": False, "schema": {"type": "integer"}},
                {"name": "ticket", "in": "query", "required": False, "schema": {"type": "string"}},
            ],
            "security": [{"tokenAuth": []}, {"cookieAuth": []}],
            "responses": {
                "200": {
                    "description": "An endless event stream",
                    "content": {
                        "text/event-stream": {
                            "schema": {"type": "string"},
                            "example": 'retry: 3000\n\nid: 42\nevent: notification\ndata: {"id": '
                            '"8e2f4a6c-1b3d-4e5f-a7b9-c0d1e2f3a4b5", "kind": "REQUEST_APPROVED", "seq": 42}\n\n',
                        }
                    },
                },
                "400": {
                    "description": "Last-Event-ID is not an integer, or beyond the newest notification",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/FieldErrors"},
                            "example": {"last_event_id": ["Must be a non-negative integer (a notification's seq)."]},
                        }
                    },
                },
                "401": {"description": "No or invalid credentials"},
                "403": {"description": "The user has no notification audience"},
                "429": {"description": "The user already has the most streams open that are allowed"},
            },
        }
    }
    return result
