"""Request input validation (shared by the API and the dashboard form) and output shapes."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from blood_requests.lifecycle import PATIENT_REFERENCE_MAX_LENGTH, is_opaque_patient_reference
from blood_requests.models import (
    BLOOD_GROUP_CHOICES,
    CANCEL_REASON_CHOICES,
    COMPONENT_CHOICES,
    INDICATION_CHOICES,
    PRIORITY_CHOICES,
    BloodRequest,
    StatusChange,
)
from shared_events.din import InvalidDIN, normalize_din
from shared_events.enums import CancelReason, Indication, Priority


class BloodRequestCreateSerializer(serializers.Serializer):
    blood_group = serializers.ChoiceField(choices=BLOOD_GROUP_CHOICES)
    component = serializers.ChoiceField(choices=COMPONENT_CHOICES)
    units = serializers.IntegerField(min_value=1, max_value=20)
    priority = serializers.ChoiceField(choices=PRIORITY_CHOICES)
    needed_by = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Required, and in the future, for SCHEDULED requests."
    )
    allow_partial = serializers.BooleanField(
        required=False, allow_null=True, help_text="Default: true for EMERGENCY, false for SCHEDULED."
    )
    patient_reference = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=PATIENT_REFERENCE_MAX_LENGTH,
        help_text="An opaque token (e.g. a record number), never a patient's name: letters, digits, . _ : / # -",
    )
    indication = serializers.ChoiceField(
        choices=INDICATION_CHOICES,
        required=False,
        default=Indication.OTHER.value,
        help_text="Why the blood is needed, as a code: the only clinical context sent to the bank.",
    )
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        help_text="A free-text note for this hospital's staff. It stays in this service and is never sent to "
        "the bank or the notification service.",
    )

    def validate_patient_reference(self, value: str) -> str:
        if value and not is_opaque_patient_reference(value):
            raise serializers.ValidationError(
                "Use an opaque reference (letters, digits and . _ : / # -, no spaces), never a patient's name."
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        needed_by = attrs.get("needed_by")
        if attrs["priority"] == Priority.SCHEDULED and needed_by is None:
            raise serializers.ValidationError({"needed_by": "Required for a SCHEDULED request."})
        if needed_by is not None and needed_by <= timezone.now():
            raise serializers.ValidationError({"needed_by": "Must be in the future."})
        return attrs


class StatusChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = StatusChange
        fields = ["status", "at", "detail"]


class DispatchedUnitSerializer(serializers.Serializer):
    unit_id = serializers.UUIDField()
    din = serializers.CharField()
    component = serializers.CharField()
    blood_group = serializers.CharField()
    expires_at = serializers.DateTimeField()


class AllocationSerializer(serializers.Serializer):
    unit_id = serializers.UUIDField()
    din = serializers.CharField()
    component = serializers.CharField()
    blood_group = serializers.CharField()
    expires_at = serializers.DateTimeField()
    batch = serializers.CharField()


class DecisionSerializer(serializers.Serializer):
    reason_code = serializers.CharField(allow_null=True)
    detail = serializers.CharField()
    decided_at = serializers.DateTimeField()


class BloodRequestSerializer(serializers.ModelSerializer):
    hospital_id = serializers.UUIDField(read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    status_history = StatusChangeSerializer(source="history", many=True, read_only=True)
    decision = serializers.SerializerMethodField()
    allocations = AllocationSerializer(many=True, read_only=True)
    released_unit_ids = serializers.ListField(child=serializers.UUIDField(), read_only=True)
    dispatched_units = DispatchedUnitSerializer(many=True, read_only=True)

    class Meta:
        model = BloodRequest
        fields = [
            "id",
            "hospital_id",
            "blood_group",
            "component",
            "units",
            "priority",
            "needed_by",
            "allow_partial",
            "patient_reference",
            "indication",
            "reason",
            "status",
            "status_history",
            "decision",
            "units_allocated",
            "allocations",
            "released_unit_ids",
            "cancel_reason_code",
            "dispatched_units",
            "dispatched_at",
            "received_at",
            "cancel_reason",
            "requested_by",
            "times_published",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(DecisionSerializer(allow_null=True))
    def get_decision(self, obj: BloodRequest) -> dict[str, Any] | None:
        if obj.decided_at is None:
            return None
        return DecisionSerializer(
            {
                "reason_code": obj.decision_reason_code or None,
                "detail": obj.decision_detail,
                "decided_at": obj.decided_at,
            }
        ).data


class ReceiveSerializer(serializers.Serializer):
    dins = serializers.ListField(
        child=serializers.CharField(max_length=14),
        min_length=1,
        max_length=40,
        help_text="The DINs scanned from the bags (13 characters, or 14 with the check character, which is "
        "verified); a DIN twice for two units of one donation.",
    )

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


class CancelSerializer(serializers.Serializer):
    reason_code = serializers.ChoiceField(
        choices=CANCEL_REASON_CHOICES,
        required=False,
        default=CancelReason.OTHER.value,
        help_text="Why, as a code: what the bank and the notifications are told.",
    )
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        default="",
        help_text="A free-text note kept in this service only.",
    )
