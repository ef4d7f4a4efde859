from blood_requests.lifecycle import PATIENT_REFERENCE_MAX_LENGTH, is_opaque_patient_reference
from blood_requests.models import UNIT_ATTRIBUTE_CHOICES
from django.utils import timezone
from rest_framework import serializers

from local_inventory.models import WASTE_REASON_CHOICES, LocalUnit
from shared_events.enums import WasteReason

_SKEW = timezone.timedelta(minutes=2)  # clocks of the ward PC and the server differ a little


def _not_future(value):
    if value > timezone.now() + _SKEW:
        raise serializers.ValidationError("must not be in the future")
    return value


class LocalUnitSerializer(serializers.ModelSerializer):
    source_request_id = serializers.UUIDField(read_only=True)
    status_changed_by = serializers.CharField(
        source="status_changed_by.username", read_only=True, default=None, allow_null=True
    )  # null until someone transfuses or discards the unit
    special_attributes = serializers.ListField(
        child=serializers.ChoiceField(choices=UNIT_ATTRIBUTE_CHOICES), read_only=True
    )
    waste_reason = serializers.ChoiceField(
        choices=WASTE_REASON_CHOICES,
        read_only=True,
        allow_blank=True,
        help_text="Why the unit was wasted; blank unless WASTED.",
    )

    class Meta:
        model = LocalUnit
        fields = [
            "id",
            "bank_unit_id",
            "din",
            "product_code",
            "division",
            "component",
            "blood_group",
            "expires_at",
            "special_attributes",
            "batch",
            "source_request_id",
            "status",
            "status_reason",
            "status_changed_by",
            "status_changed_at",
            "received_at",
            "patient_reference",
            "started_at",
            "ended_at",
            "adverse_reaction",
            "waste_reason",
            "left_storage_at",
            "returned_at",
            "cold_chain_intact",
        ]
        read_only_fields = fields


class TransfuseSerializer(serializers.Serializer):
    patient_reference = serializers.CharField(
        max_length=PATIENT_REFERENCE_MAX_LENGTH,
        help_text="The recipient's opaque reference (e.g. a record number), never a name.",
    )
    started_at = serializers.DateTimeField(validators=[_not_future])
    ended_at = serializers.DateTimeField(required=False, allow_null=True, default=None, validators=[_not_future])
    adverse_reaction = serializers.BooleanField(required=False, default=False)

    def validate_patient_reference(self, value: str) -> str:
        if not is_opaque_patient_reference(value):
            raise serializers.ValidationError(
                "Use an opaque reference (letters, digits and . _ : / # -, no spaces), never a patient's name."
            )
        return value

    def validate(self, attrs: dict) -> dict:
        if attrs.get("ended_at") is not None and attrs["ended_at"] < attrs["started_at"]:
            raise serializers.ValidationError({"ended_at": "must not be before started_at"})
        return attrs


class DiscardSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=WASTE_REASON_CHOICES, help_text="Why the unit was wasted (coded).")
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="", help_text="Stays here.")

    def validate(self, attrs: dict) -> dict:
        if attrs["reason"] == WasteReason.OTHER and not attrs["note"].strip():
            raise serializers.ValidationError({"note": "required when the reason is OTHER"})
        return attrs


class ReturnSerializer(serializers.Serializer):
    left_storage_at = serializers.DateTimeField(validators=[_not_future], help_text="When it left the fridge.")
    returned_at = serializers.DateTimeField(
        required=False,
        validators=[_not_future],
        help_text="Default: now. The same return again without it is a repeat (200), not a second fate.",
    )
    cold_chain_intact = serializers.BooleanField()
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="", help_text="Stays here.")

    def validate(self, attrs: dict) -> dict:
        returned_at = attrs.get("returned_at")
        if returned_at is not None and returned_at < attrs["left_storage_at"]:
            raise serializers.ValidationError({"returned_at": "must not be before left_storage_at"})
        return attrs


class LocalSummaryRowSerializer(serializers.Serializer):
    component = serializers.CharField()
    blood_group = serializers.CharField()
    available_units = serializers.IntegerField()
    expiring_within_72h = serializers.IntegerField()
    transfused_units = serializers.IntegerField()
    discarded_units = serializers.IntegerField()
    expired_units = serializers.IntegerField()
