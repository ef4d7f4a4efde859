from __future__ import annotations

from rest_framework import serializers

from allocation.models import Allocation, BankRequest


class AllocationSerializer(serializers.ModelSerializer):
    unit_id = serializers.UUIDField(source="unit.id")
    din = serializers.CharField(source="unit.din")
    component = serializers.CharField(source="unit.component")
    blood_group = serializers.CharField(source="unit.blood_group")
    expires_at = serializers.DateTimeField(source="unit.expires_at")
    batch = serializers.CharField(source="unit.batch")
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
            "unit_status",
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


class BankRequestSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="request_id")
    decision = serializers.SerializerMethodField()
    allocations = AllocationSerializer(many=True, read_only=True)

    class Meta:
        model = BankRequest
        fields = [
            "id",
            "hospital_id",
            "hospital_name",
            "blood_group",
            "component",
            "units_requested",
            "priority",
            "needed_by",
            "allow_partial",
            "patient_reference",
            "indication",
            "requested_by",
            "requested_at",
            "received_at",
            "status",
            "decision",
            "allocations",
            "cancelled_at",
            "cancelled_by",
            "cancel_reason_code",
        ]

    def get_decision(self, bank_request: BankRequest) -> dict | None:
        if not bank_request.is_decided:
            return None
        return DecisionSerializer(bank_request).data
