from rest_framework import serializers

from bank_stock.models import BankStock


class BankStockSerializer(serializers.ModelSerializer):
    class Meta:
        model = BankStock
        fields = ["component", "blood_group", "available_units", "expiring_within_72h", "level", "as_of"]
        read_only_fields = fields
