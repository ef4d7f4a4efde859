from rest_framework import serializers

from bank_stock.models import BankStock


class BankStockSerializer(serializers.ModelSerializer):
    days_of_supply = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text="Available units / mean daily issue over the last 28 days (one decimal), from the bank's "
        "`bloodbank.inventory.updated`; null when nothing was issued or the bank did not say.",
    )

    class Meta:
        model = BankStock
        fields = [
            "component",
            "blood_group",
            "available_units",
            "expiring_within_72h",
            "level",
            "days_of_supply",
            "as_of",
        ]
        read_only_fields = fields
