from __future__ import annotations

from rest_framework import serializers

from notifications.models import Notification


class NotificationSerializer(serializers.ModelSerializer):
    read = serializers.BooleanField(read_only=True)
    seq = serializers.IntegerField(source="feed_seq", read_only=True, help_text="Live-feed position (SSE event id).")
    escalation_of = serializers.UUIDField(source="escalation_of_id", read_only=True, allow_null=True)

    class Meta:
        model = Notification
        fields = [
            "id",
            "audience",
            "kind",
            "severity",
            "title",
            "body",
            "request_id",
            "pack",
            "component",
            "blood_group",
            "source_event_id",
            "source_event_type",
            "correlation_id",
            "occurred_at",
            "created_at",
            "updated_at",
            "read",
            "read_at",
            "escalated_at",
            "escalation_of",
            "seq",
        ]
        read_only_fields = fields


class UnreadCountSerializer(serializers.Serializer):
    unread = serializers.IntegerField()


class MarkedReadSerializer(serializers.Serializer):
    marked_read = serializers.IntegerField()


class StreamTicketSerializer(serializers.Serializer):
    ticket = serializers.CharField(help_text="Open the live feed once with `?ticket=<ticket>`.")
    expires_at = serializers.DateTimeField(help_text="Unused after this time, the ticket is refused.")
