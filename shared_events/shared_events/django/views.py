"""Operational endpoints every service serves: liveness, readiness, metrics."""

from __future__ import annotations

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from shared_events.django.metrics import render


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
    """Prometheus text: the figures of every process of this service (see ``shared_events.django.metrics``)."""
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
