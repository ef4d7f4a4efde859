from __future__ import annotations

from rest_framework import serializers

from allocation.models import Allocation, BankRequest, MtpPack


class AllocationSerializer(serializers.ModelSerializer):
    unit_id = serializers.UUIDField(source="unit.id")
    din = serializers.CharField(source="unit.din")
    component = serializers.CharField(source="unit.component")
    blood_group = serializers.CharField(source="unit.blood_group")
    expires_at = serializers.DateTimeField(source="unit.expires_at")
    batch = serializers.CharField(source="unit.batch")
    product_code = serializers.CharField(source="unit.product_code")
    division = serializers.CharField(source="unit.division")
    special_attributes = serializers.ListField(source="unit.special_attributes", child=serializers.CharField())
    unit_status = serializers.CharField(source="unit.status")

    class Meta:
        model = Allocation
        fields = [
            "unit_id",
            "din",
            "component",
            "blood_group",
            "expires_at",
            "batch",
            "product_code",
            "division",
            "special_attributes",
            "unit_status",
            "pack",
            "allocated_at",
            "released_at",
            "release_reason",
        ]


class DecisionSerializer(serializers.Serializer):
    status = serializers.CharField()
    reason_code = serializers.CharField()
    detail = serializers.CharField()
    units_allocated = serializers.IntegerField()
    decided_at = serializers.DateTimeField()
    event_id = serializers.UUIDField(source="decision_event_id")


class MtpPackSerializer(serializers.ModelSerializer):
    event_id = serializers.UUIDField(source="decision_event_id")

    class Meta:
        model = MtpPack
        fields = [
            "number",
            "status",
            "reason_code",
            "detail",
            "units_requested",
            "units_allocated",
            "requested_by",
            "requested_at",
            "decided_at",
            "event_id",
        ]


class BankRequestSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="request_id")
    decision = serializers.SerializerMethodField()
    allocations = AllocationSerializer(many=True, read_only=True)
    packs = MtpPackSerializer(many=True, read_only=True, help_text="MTP requests: each pack's decision")

    class Meta:
        model = BankRequest
        fields = [
            "id",
            "hospital_id",
            "hospital_name",
            "blood_group",
            "protocol",
            "component",
            "units_requested",
            "priority",
            "needed_by",
            "allow_partial",
            "authorised_by",
            "group_confirmed",
            "rhd_negative_required",
            "special_requirements",
            "antigen_negative",
            "uncrossmatched",
            "patient_reference",
            "indication",
            "requested_by",
            "requested_at",
            "received_at",
            "status",
            "decision",
            "allocations",
            "packs",
            "cancelled_at",
            "cancelled_by",
            "cancel_reason_code",
            "mtp_stopped_at",
            "mtp_stopped_by",
        ]

    def get_decision(self, bank_request: BankRequest) -> dict | None:
        if not bank_request.is_decided:
            return None
        return DecisionSerializer(bank_request).data
