from __future__ import annotations

from inventory.din import InvalidDIN, normalize_din
from rest_framework import serializers

from shared_events.enums import RecallReason, RecallSeverity, choices
from traceability.models import RECALL_REASON_CHOICES, Recall, RecallUnit


class DispatchInSerializer(serializers.Serializer):
    courier = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    pack = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        default=None,
        help_text="MTP requests only: the pack to dispatch (default: the oldest pack with units still allocated)",
    )


class UnitEntrySerializer(serializers.Serializer):
    unit_id = serializers.UUIDField(source="pk")
    din = serializers.CharField()
    product_code = serializers.CharField(allow_null=True)
    division = serializers.CharField()
    component = serializers.CharField()
    blood_group = serializers.CharField()
    expires_at = serializers.DateTimeField()
    special_attributes = serializers.ListField(child=serializers.CharField())


class DispatchSerializer(serializers.Serializer):
    request_id = serializers.UUIDField()
    pack = serializers.IntegerField(allow_null=True)
    dispatched_at = serializers.DateTimeField()
    dispatched_by = serializers.CharField()
    courier = serializers.CharField()
    note = serializers.CharField()
    units = serializers.SerializerMethodField()

    def get_units(self, dispatch) -> list[dict]:
        return UnitEntrySerializer(dispatch.units.order_by("din"), many=True).data


class TraceEventSerializer(serializers.Serializer):
    step = serializers.CharField()
    at = serializers.DateTimeField()
    by = serializers.CharField(help_text="a username, or `system`")
    hospital_id = serializers.UUIDField(allow_null=True)
    request_id = serializers.UUIDField(allow_null=True)
    status = serializers.CharField(help_text="the unit's bank status after this step")
    detail = serializers.DictField()


class TracedUnitSerializer(serializers.Serializer):
    unit_id = serializers.UUIDField()
    product_code = serializers.CharField(allow_null=True)
    division = serializers.CharField()
    component = serializers.CharField()
    blood_group = serializers.CharField()
    status = serializers.CharField()
    recalled = serializers.BooleanField()
    events = TraceEventSerializer(many=True)


class TraceSerializer(serializers.Serializer):
    din = serializers.CharField()
    units = TracedUnitSerializer(many=True)


class RecallCreateSerializer(serializers.Serializer):
    dins = serializers.ListField(
        child=serializers.CharField(max_length=14),
        min_length=1,
        max_length=200,
        help_text="DINs of the donations recalled (13 characters, or 14 with the check character)",
    )
    reason = serializers.ChoiceField(choices=RECALL_REASON_CHOICES)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    severity = serializers.ChoiceField(choices=choices(RecallSeverity))

    def validate_dins(self, value: list[str]) -> list[str]:
        dins, errors = [], {}
        for index, text in enumerate(value):
            try:
                dins.append(normalize_din(text))
            except InvalidDIN as exc:
                errors[index] = [str(exc)]
        if errors:
            raise serializers.ValidationError(errors)
        return dins

    def validate(self, attrs: dict) -> dict:
        if attrs["reason"] == RecallReason.OTHER and not attrs.get("note", "").strip():
            raise serializers.ValidationError({"note": "required when the reason is OTHER"})
        return attrs


class RecallUnitSerializer(serializers.ModelSerializer):
    din = serializers.CharField(source="unit.din")
    component = serializers.CharField(source="unit.component")
    accounted = serializers.SerializerMethodField()

    class Meta:
        model = RecallUnit
        fields = [
            "unit_id",
            "din",
            "component",
            "bank_status",
            "hospital_id",
            "request_id",
            "outcome",
            "answered_at",
            "patient_reference",
            "started_at",
            "accounted",
        ]

    def get_accounted(self, entry: RecallUnit) -> bool:
        from traceability.rules import ACCOUNTED

        return entry.outcome in ACCOUNTED


class RecallSerializer(serializers.ModelSerializer):
    units = RecallUnitSerializer(many=True, read_only=True)

    class Meta:
        model = Recall
        fields = [
            "id",
            "dins",
            "reason",
            "note",
            "severity",
            "status",
            "issued_by",
            "issued_at",
            "closed_by",
            "closed_at",
            "units",
        ]
        read_only_fields = fields
