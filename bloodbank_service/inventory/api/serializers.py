from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from inventory.din import InvalidDIN, normalize_din
from inventory.models import (
    ANTIGEN_CHOICES,
    ATTRIBUTE_CHOICES,
    COMPONENT_CHOICES,
    GROUP_CHOICES,
    LEVEL_CHOICES,
    ProductDescription,
    Unit,
    UnitStatusChange,
)
from inventory.products import default_code_of
from shared_events.enums import BankDiscardReason, UnitAttribute, choices

BANK_DISCARD_REASON_CHOICES = choices(BankDiscardReason)


class UnitStatusChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = UnitStatusChange
        fields = ["from_status", "to_status", "at", "by", "reason", "request_id"]


class UnitSerializer(serializers.ModelSerializer):
    allocated_to = serializers.SerializerMethodField()
    special_attributes = serializers.ListField(child=serializers.ChoiceField(choices=ATTRIBUTE_CHOICES), read_only=True)
    antigen_negative = serializers.ListField(child=serializers.ChoiceField(choices=ANTIGEN_CHOICES), read_only=True)

    class Meta:
        model = Unit
        fields = [
            "id",
            "din",
            "product_code",
            "division",
            "component",
            "blood_group",
            "volume_ml",
            "collected_at",
            "expires_at",
            "batch",
            "special_attributes",
            "antigen_negative",
            "irradiated_at",
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
    """The body of a receipt: types only; the rules are ``inventory.receipt.check_receipt``'s."""

    din = serializers.CharField(max_length=14, help_text="13 characters, or 14 with the ISO 7064 check character")
    product_code = serializers.CharField(
        max_length=16,
        required=False,
        allow_blank=True,
        help_text="ISBT 128 Product Code, 8 characters: PDC (E + 4 of 0-9/A-Z, in the product table), type of "
        "donation, division (00, A0-Z0, Aa-Zz). Gives `component` and `division`. Without it, `component` "
        "gets its configured default code, division 00.",
    )
    component = serializers.ChoiceField(
        choices=COMPONENT_CHOICES,
        required=False,
        help_text="only needed without `product_code`; with it, must agree with the code's PDC",
    )
    blood_group = serializers.ChoiceField(choices=GROUP_CHOICES)
    volume_ml = serializers.IntegerField(min_value=1, max_value=1000)
    collected_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(
        help_text="the expiry printed on the label (required): after `collected_at`, in the future, within the "
        "component's longest shelf life; the product's default shelf life (`GET /api/v1/products/`) is only a "
        "suggestion"
    )
    batch = serializers.CharField(max_length=40)
    special_attributes = serializers.ListField(
        child=serializers.ChoiceField(choices=ATTRIBUTE_CHOICES),
        required=False,
        max_length=len(UnitAttribute),
        help_text="from test results (CMV_NEGATIVE, HBS_NEGATIVE, HT_NEGATIVE ...); the product's own "
        "attributes are added from its PDC",
    )
    antigen_negative = serializers.ListField(
        child=serializers.ChoiceField(choices=ANTIGEN_CHOICES),
        required=False,
        max_length=len(ANTIGEN_CHOICES),
        help_text="red-cell antigens the unit is typed negative for (case-sensitive); red cells and whole blood",
    )
    irradiated_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="required for an IRRADIATED red-cell unit, whose expiry is then at most "
        "`IRRADIATED_RED_CELL_DAYS` (14) days later; implies IRRADIATED",
    )

    def validate_din(self, value: str) -> str:
        try:
            return normalize_din(value)
        except InvalidDIN as exc:
            raise serializers.ValidationError(str(exc)) from exc


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class DiscardSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=BANK_DISCARD_REASON_CHOICES, help_text="a BankDiscardReason code")
    note = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default="", help_text="required when `reason` is OTHER"
    )

    def validate(self, attrs: dict) -> dict:
        if attrs["reason"] == BankDiscardReason.OTHER and not attrs["note"].strip():
            raise serializers.ValidationError({"note": "required when the reason is OTHER"})
        return attrs


class IrradiateSerializer(serializers.Serializer):
    irradiated_at = serializers.DateTimeField(
        required=False, help_text="when the unit was irradiated; default now. Not in the future."
    )


class ProductSerializer(serializers.ModelSerializer):
    default_product_code = serializers.SerializerMethodField(help_text="volunteer donation, undivided")
    default_shelf_life_hours = serializers.SerializerMethodField(
        help_text="a suggestion for the label's expiry, from collection"
    )
    attributes = serializers.ListField(child=serializers.ChoiceField(choices=ATTRIBUTE_CHOICES))

    class Meta:
        model = ProductDescription
        fields = [
            "pdc",
            "component",
            "description",
            "attributes",
            "default_shelf_life_hours",
            "component_default",
            "default_product_code",
        ]
        read_only_fields = fields

    def get_default_product_code(self, product: ProductDescription) -> str:
        return default_code_of(product.pdc)

    def get_default_shelf_life_hours(self, product: ProductDescription) -> float:
        return product.default_shelf_life.total_seconds() / 3600


class StockRowSerializer(serializers.Serializer):
    component = serializers.ChoiceField(choices=COMPONENT_CHOICES)
    blood_group = serializers.ChoiceField(choices=GROUP_CHOICES)
    available_units = serializers.IntegerField()
    allocated_units = serializers.IntegerField()
    expiring_within_72h = serializers.IntegerField()
    low_threshold = serializers.IntegerField()
    critical_threshold = serializers.IntegerField()
    days_of_supply = serializers.FloatField(
        allow_null=True, help_text="available / (units dispatched in the last 28 days / 28); null: none dispatched"
    )
    low_days = serializers.FloatField(allow_null=True)
    critical_days = serializers.FloatField(allow_null=True)
    level = serializers.ChoiceField(
        choices=LEVEL_CHOICES, help_text="the worse of the level by units and the level by days of supply"
    )
    by_attribute = serializers.DictField(
        child=serializers.IntegerField(), help_text="available units carrying each special attribute"
    )


class ThresholdSerializer(serializers.Serializer):
    component = serializers.ChoiceField(choices=COMPONENT_CHOICES)
    blood_group = serializers.ChoiceField(choices=GROUP_CHOICES)
    low_threshold = serializers.IntegerField(min_value=0, max_value=10000)
    critical_threshold = serializers.IntegerField(min_value=0, max_value=10000)
    low_days = serializers.DecimalField(
        max_digits=5,
        decimal_places=1,
        min_value=Decimal(0),
        required=False,
        allow_null=True,
        coerce_to_string=False,
        help_text="LOW at or below this many days of supply; null: no level by days; left out: unchanged",
    )
    critical_days = serializers.DecimalField(
        max_digits=5,
        decimal_places=1,
        min_value=Decimal(0),
        required=False,
        allow_null=True,
        coerce_to_string=False,
        help_text="CRITICAL at or below this many days of supply; not above `low_days`",
    )

    def validate(self, attrs: dict) -> dict:
        if attrs["critical_threshold"] > attrs["low_threshold"]:
            raise serializers.ValidationError({"critical_threshold": "must not be above low_threshold"})
        low, critical = attrs.get("low_days"), attrs.get("critical_days")
        if low is not None and critical is not None and critical > low:
            raise serializers.ValidationError({"critical_days": "must not be above low_days"})
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
