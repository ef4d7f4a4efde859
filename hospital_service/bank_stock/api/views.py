"""Last-known bank stock: answered from our own read model, so it works while the bank is down."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from hospitals.permissions import HospitalScopedMixin
from rest_framework import generics

from bank_stock import selectors
from bank_stock.api.serializers import BankStockSerializer


@extend_schema_view(
    get=extend_schema(
        summary="Last-known blood bank stock",
        description="Availability per component and blood group as last announced by the bank "
        "(`bloodbank.inventory.*` events), so it answers while the bank is down; `as_of` says how fresh it is. "
        "`days_of_supply`: how many days the units last at the recent rate of issue (null: none issued).",
        examples=[
            OpenApiExample(
                "O- red cells running low",
                value={
                    "component": "RED_CELLS",
                    "blood_group": "O-",
                    "available_units": 4,
                    "expiring_within_72h": 1,
                    "level": "LOW",
                    "days_of_supply": 1.3,
                    "as_of": "2026-11-29T06:00:00.150000Z",
                },
                response_only=True,
            )
        ],
    )
)
class BankStockView(HospitalScopedMixin, generics.ListAPIView):
    serializer_class = BankStockSerializer
    filterset_fields = ["component", "blood_group", "level"]

    def get_queryset(self):
        return selectors.bank_stock()
