from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers

from inventory import rules
from inventory.din import InvalidDIN, normalize_din
from inventory.models import COMPONENT_CHOICES, GROUP_CHOICES, LEVEL_CHOICES, Unit, UnitStatusChange


class UnitStatusChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = UnitStatusChange
        fields = ["from_status", "to_status", "at", "by", "reason", "request_id"]


class UnitSerializer(serializers.ModelSerializer):
    allocated_to = serializers.SerializerMethodField()

    class Meta:
        model = Unit
        fields = [
            "id",
            "din",
            "component",
            "blood_group",
            "volume_ml",
            "collected_at",
            "expires_at",
            "batch",
            "status",
            "allocated_to",
            "received_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_allocated_to(self, unit: Unit) -> str | None:
        live = [a for a in unit.allocations.all() if a.released_at is None]
        return str(live[0].request_id) if live else None


class UnitDetailSerializer(UnitSerializer):
    history = UnitStatusChangeSerializer(many=True, read_only=True)

    class Meta(UnitSerializer.Meta):
        fields = [*UnitSerializer.Meta.fields, "history"]
        read_only_fields = fields


class ReceiveUnitSerializer(serializers.Serializer):
    din = serializers.CharField(max_length=14, help_text="13 characters, or 14 with the ISO 7064 check character")
    component = serializers.ChoiceField(choices=COMPONENT_CHOICES)
    blood_group = serializers.ChoiceField(choices=GROUP_CHOICES)
    volume_ml = serializers.IntegerField(min_value=1, max_value=1000)
    collected_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(required=False, help_text="defaults to the component's shelf life")
    batch = serializers.CharField(max_length=40)

    def validate_din(self, value: str) -> str:
        try:
            return normalize_din(value)
        except InvalidDIN as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate_collected_at(self, value):
        if value > timezone.now():
            raise serializers.ValidationError("collected_at cannot be in the future")
        return value

    def validate(self, attrs: dict) -> dict:
        expires_at = attrs.get("expires_at")
        if expires_at is not None and expires_at <= attrs["collected_at"]:
            raise serializers.ValidationError({"expires_at": "must be after collected_at"})
        if expires_at is not None:
            problem = rules.expiry_problem(
                attrs["component"], collected_at=attrs["collected_at"], expires_at=expires_at, now=timezone.now()
            )
            if problem:
                raise serializers.ValidationError({"expires_at": problem})
        elif attrs["collected_at"] + rules.SHELF_LIFE[attrs["component"]] <= timezone.now():
            raise serializers.ValidationError({"collected_at": "with the default shelf life the unit has expired"})
        if Unit.objects.filter(din=attrs["din"], component=attrs["component"]).exists():
            raise serializers.ValidationError({"din": "a unit with this DIN and component is already recorded"})
        return attrs


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class StockRowSerializer(serializers.Serializer):
    component = serializers.ChoiceField(choices=COMPONENT_CHOICES)
    blood_group = serializers.ChoiceField(choices=GROUP_CHOICES)
    available_units = serializers.IntegerField()
    allocated_units = serializers.IntegerField()
    expiring_within_72h = serializers.IntegerField()
    low_threshold = serializers.IntegerField()
    critical_threshold = serializers.IntegerField()
    level = serializers.ChoiceField(choices=LEVEL_CHOICES)


class ThresholdSerializer(serializers.Serializer):
    component = serializers.ChoiceField(choices=COMPONENT_CHOICES)
    blood_group = serializers.ChoiceField(choices=GROUP_CHOICES)
    low_threshold = serializers.IntegerField(min_value=0, max_value=10000)
    critical_threshold = serializers.IntegerField(min_value=0, max_value=10000)

    def validate(self, attrs: dict) -> dict:
        if attrs["critical_threshold"] > attrs["low_threshold"]:
            raise serializers.ValidationError({"critical_threshold": "must not be above low_threshold"})
        return attrs


class ThresholdListSerializer(serializers.ListSerializer):
    child = ThresholdSerializer()

    def validate(self, attrs: list) -> list:
        keys = [(item["component"], item["blood_group"]) for item in attrs]
        if len(keys) != len(set(keys)):
            raise serializers.ValidationError("each component and blood group at most once")
        if not keys:
            raise serializers.ValidationError("at least one threshold")
        return attrs
