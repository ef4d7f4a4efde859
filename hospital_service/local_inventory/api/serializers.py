from rest_framework import serializers

from local_inventory.models import LocalUnit


class LocalUnitSerializer(serializers.ModelSerializer):
    source_request_id = serializers.UUIDField(read_only=True)
    status_changed_by = serializers.CharField(
        source="status_changed_by.username", read_only=True, default=None, allow_null=True
    )  # null until someone transfuses or discards the unit

    class Meta:
        model = LocalUnit
        fields = [
            "id",
            "bank_unit_id",
            "din",
            "component",
            "blood_group",
            "expires_at",
            "batch",
            "source_request_id",
            "status",
            "status_reason",
            "status_changed_by",
            "status_changed_at",
            "received_at",
        ]
        read_only_fields = fields


class TransfuseSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class DiscardSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, help_text="Why the unit was wasted (required).")


class LocalSummaryRowSerializer(serializers.Serializer):
    component = serializers.CharField()
    blood_group = serializers.CharField()
    available_units = serializers.IntegerField()
    expiring_within_72h = serializers.IntegerField()
    transfused_units = serializers.IntegerField()
    discarded_units = serializers.IntegerField()
    expired_units = serializers.IntegerField()
