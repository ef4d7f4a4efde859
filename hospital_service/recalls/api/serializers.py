from __future__ import annotations

from rest_framework import serializers

from recalls.models import HospitalRecall, HospitalRecallUnit


class RecallUnitSerializer(serializers.ModelSerializer):
    class Meta:
        model = HospitalRecallUnit
        fields = ["bank_unit_id", "din", "component", "blood_group", "request_id", "state", "updated_at"]
        read_only_fields = fields


class RecallSerializer(serializers.ModelSerializer):
    units = RecallUnitSerializer(many=True, read_only=True)

    class Meta:
        model = HospitalRecall
        fields = ["recall_id", "reason", "severity", "issued_at", "received_at", "last_acknowledged_at", "units"]
        read_only_fields = fields
