"""Last-known bank stock: answered from our own read model, so it works while the bank is down."""

from __future__ import annotations

from hospitals.permissions import HospitalScopedMixin
from rest_framework import generics

from bank_stock import selectors
from bank_stock.api.serializers import BankStockSerializer


class BankStockView(HospitalScopedMixin, generics.ListAPIView):
    serializer_class = BankStockSerializer
    filterset_fields = ["component", "blood_group", "level"]

    def get_queryset(self):
        return selectors.bank_stock()
