"""Operational endpoints every service serves: liveness, readiness, metrics."""

from __future__ import annotations

from django.db import DatabaseError, connection
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from shared_events.django.models import InboxEvent, OutboxEvent


@require_GET
def healthz(_request: HttpRequest) -> JsonResponse:
    """The process is alive (no dependencies checked)."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(_request: HttpRequest) -> JsonResponse:
    """The process can serve: its database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return JsonResponse({"status": "unavailable", "database": str(exc)[:200]}, status=503)
    return JsonResponse({"status": "ready", "database": "ok"})


@require_GET
def metrics(_request: HttpRequest) -> HttpResponse:
    """Prometheus text format, read from the database so every web process agrees."""
    outbox = OutboxEvent.objects.aggregate(
        pending=Count("id", filter=Q(sent_at__isnull=True)),
        sent=Count("id", filter=Q(sent_at__isnull=False)),
        failed_attempts=Count("id", filter=Q(attempts__gt=0)),
    )
    lines = [
        "# HELP outbox_pending_events Outbox rows not yet confirmed by the broker.",
        "# TYPE outbox_pending_events gauge",
        f"outbox_pending_events {outbox['pending']}",
        "# HELP outbox_sent_events_total Outbox rows confirmed by the broker.",
        "# TYPE outbox_sent_events_total counter",
        f"outbox_sent_events_total {outbox['sent']}",
        "# HELP outbox_rows_with_failed_attempts Outbox rows that needed a retry.",
        "# TYPE outbox_rows_with_failed_attempts gauge",
        f"outbox_rows_with_failed_attempts {outbox['failed_attempts']}",
        "# HELP inbox_events_total Events handled or dead-lettered, by type and outcome.",
        "# TYPE inbox_events_total counter",
    ]
    for row in InboxEvent.objects.values("event_type", "outcome").annotate(n=Count("id")).order_by():
        lines.append(f'inbox_events_total{{event_type="{row["event_type"]}",outcome="{row["outcome"]}"}} {row["n"]}')
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; version=0.0.4")
