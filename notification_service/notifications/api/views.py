"""REST endpoints of the notifications API: each user sees only its own audience."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from notifications import selectors, services, stream_access
from notifications.api.serializers import (
    MarkedReadSerializer,
    NotificationSerializer,
    StreamTicketSerializer,
    UnreadCountSerializer,
)
from notifications.models import Kind, Notification, Severity


class HasAudience(IsAuthenticated):
    """Authenticated and a notification recipient (403 for a user without an audience)."""

    message = "This user has no notification audience."

    def has_permission(self, request: Request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        audience = selectors.audience_of(request.user)
        if audience is None:
            raise PermissionDenied(self.message)
        request.audience = audience
        return True


class NotificationFilter(django_filters.FilterSet):
    # A choice, not a BooleanFilter: that one reads any other value as "no filter" instead of a 400.
    unread = django_filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")],
        method="filter_unread",
        label="Only unread (true) or only read (false)",
    )
    severity = django_filters.ChoiceFilter(choices=Severity.choices)
    kind = django_filters.ChoiceFilter(choices=Kind.choices)
    request_id = django_filters.UUIDFilter()

    class Meta:
        model = Notification
        fields = ["unread", "severity", "kind", "request_id"]

    def filter_unread(self, queryset, _name, value):
        return queryset.filter(read_at__isnull=value == "true")


NOTIFICATION = {
    "id": "8e2f4a6c-1b3d-4e5f-a7b9-c0d1e2f3a4b5",
    "audience": "hospital:6b0f4c3e-2a7d-4e19-8c55-91d2f0a3b7e4",
    "kind": "REQUEST_APPROVED",
    "severity": "INFO",
    "title": "Request approved: 2 units O- RED_CELLS",
    "body": "2 units of O- red cells approved for your EMERGENCY request.",
    "request_id": "3f6c2a9e-8d41-4f7b-9a55-0c1e2b7d4a10",
    "pack": None,
    "component": "RED_CELLS",
    "blood_group": "O-",
    "source_event_id": "c7a1e9d2-4b3f-4e8a-9c01-2d3e4f5a6b7c",
    "source_event_type": "bloodbank.blood.approved",
    "correlation_id": "0d9c8b7a-6f5e-4d3c-b2a1-098f7e6d5c4b",
    "occurred_at": "2026-11-29T06:00:00.150000Z",
    "created_at": "2026-11-29T06:00:00.170000Z",
    "updated_at": "2026-11-29T06:00:00.170000Z",
    "read": False,
    "read_at": None,
    "escalated_at": None,
    "escalation_of": None,
    "seq": 42,
}
UNREAD = OpenApiExample("An unread approval", value=NOTIFICATION, response_only=True)


@extend_schema_view(
    list=extend_schema(
        summary="List the caller's notifications",
        description="Latest first, for the caller's audience only (a hospital's staff or the blood bank); "
        "filters `unread`, `severity`, `kind`, `request_id`.",
        examples=[UNREAD],
    ),
    retrieve=extend_schema(
        summary="One notification", description="Another audience's notification is 404.", examples=[UNREAD]
    ),
)
class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's audience's notifications, latest first; another audience's are 404."""

    serializer_class = NotificationSerializer
    permission_classes = [HasAudience]
    filterset_class = NotificationFilter
    lookup_value_regex = "[0-9a-fA-F-]{36}"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Notification.objects.none()
        return selectors.notifications_for(audience=self.request.audience)

    @extend_schema(
        summary="How many of the caller's notifications are unread",
        request=None,
        responses=UnreadCountSerializer,
        examples=[OpenApiExample("Three unread", value={"unread": 3}, response_only=True)],
    )
    @action(detail=False, methods=["get"], url_path="unread-count", filterset_class=None)
    def unread_count(self, request: Request) -> Response:
        return Response({"unread": selectors.unread_count(audience=request.audience)})

    @extend_schema(
        summary="Mark one notification read",
        description="Idempotent: marking it again keeps the first `read_at`.",
        request=None,
        responses=NotificationSerializer,
        examples=[
            OpenApiExample(
                "Read",
                value=NOTIFICATION | {"read": True, "read_at": "2026-11-29T06:05:00Z"},
                response_only=True,
            )
        ],
    )
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        notification = self.get_object()  # 404 for another audience's id (or a malformed one)
        notification = services.mark_read(audience=request.audience, notification_id=notification.id)
        return Response(NotificationSerializer(notification).data)

    @extend_schema(
        summary="Mark all the caller's notifications read",
        request=None,
        responses=MarkedReadSerializer,
        examples=[OpenApiExample("Three marked", value={"marked_read": 3}, response_only=True)],
    )
    @action(detail=False, methods=["post"], url_path="read-all", filterset_class=None)
    def read_all(self, request: Request) -> Response:
        return Response({"marked_read": services.mark_all_read(audience=request.audience)})

    @extend_schema(
        summary="A single-use ticket to open the live feed",
        description="For an EventSource on another origin, which cannot send the token header: open "
        "`GET /api/v1/notifications/stream/?ticket=<ticket>` within `expires_at` (30 seconds). The ticket "
        "opens one stream; to reconnect, ask for a new one (and pass `last_event_id`). Long-lived tokens "
        "are never accepted in the URL.",
        request=None,
        responses={201: StreamTicketSerializer},
        examples=[
            OpenApiExample(
                "A ticket",
                value={"ticket": "<43 URL-safe characters>", "expires_at": "2026-11-29T06:00:30Z"},
                response_only=True,
            )
        ],
    )
    @action(detail=False, methods=["post"], url_path="stream-ticket", filterset_class=None)
    def stream_ticket(self, request: Request) -> Response:
        ticket, expires_at = stream_access.issue_ticket(user=request.user)
        return Response(StreamTicketSerializer({"ticket": ticket, "expires_at": expires_at}).data, status=201)
