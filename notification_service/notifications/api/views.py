"""REST endpoints of the notifications API: each user sees only its own audience."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from notifications import selectors, services
from notifications.api.serializers import MarkedReadSerializer, NotificationSerializer, UnreadCountSerializer
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
    unread = django_filters.BooleanFilter(method="filter_unread", label="Only unread (true) or only read (false)")
    severity = django_filters.ChoiceFilter(choices=Severity.choices)
    kind = django_filters.ChoiceFilter(choices=Kind.choices)
    request_id = django_filters.UUIDFilter()

    class Meta:
        model = Notification
        fields = ["unread", "severity", "kind", "request_id"]

    def filter_unread(self, queryset, _name, value):
        return queryset.filter(read_at__isnull=value)


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

    @extend_schema(request=None, responses=UnreadCountSerializer)
    @action(detail=False, methods=["get"], url_path="unread-count", filterset_class=None)
    def unread_count(self, request: Request) -> Response:
        return Response({"unread": selectors.unread_count(audience=request.audience)})

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        notification = self.get_object()  # 404 for another audience's id (or a malformed one)
        notification = services.mark_read(audience=request.audience, notification_id=notification.id)
        return Response(NotificationSerializer(notification).data)

    @extend_schema(request=None, responses=MarkedReadSerializer)
    @action(detail=False, methods=["post"], url_path="read-all", filterset_class=None)
    def read_all(self, request: Request) -> Response:
        return Response({"marked_read": services.mark_all_read(audience=request.audience)})
