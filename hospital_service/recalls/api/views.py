"""Recalls the bank sent to this hospital, with each unit's state here (only the caller's hospital)."""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from hospitals.permissions import HospitalScopedMixin
from rest_framework import mixins, viewsets

from recalls.api.serializers import RecallSerializer
from recalls.models import HospitalRecall, HospitalRecallUnit

RECALL = {
    "recall_id": "0b7e6f2d-1c3a-4e5f-8a9b-0c1d2e3f4a5b",
    "reason": "DONOR_INFECTION",
    "severity": "HIGH",
    "issued_at": "2026-12-01T09:00:00Z",
    "received_at": "2026-12-01T09:00:01Z",
    "last_acknowledged_at": "2026-12-01T09:00:01Z",
    "units": [
        {
            "bank_unit_id": "a1d3c6e2-5b7f-4c08-9e21-3f4a5b6c7d80",
            "din": "G123426000421",
            "component": "RED_CELLS",
            "blood_group": "O-",
            "request_id": "3f6c2a9e-8d41-4f7b-9a55-0c1e2b7d4a10",
            "state": "QUARANTINED_HERE",
            "updated_at": "2026-12-01T09:00:01Z",
        }
    ],
}


@extend_schema_view(
    list=extend_schema(
        summary="Recalls of units issued to this hospital",
        description="Per unit its `state` here: `QUARANTINED_HERE` (waste or return it), `IN_TRANSIT`, "
        "`TRANSFUSED` (look-back: follow up the recipient), `WASTED`, `RETURNED`. The bank is told at once and "
        "on every change.",
        examples=[OpenApiExample("A recall", value=RECALL, response_only=True)],
    )
)
class RecallViewSet(HospitalScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = RecallSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return HospitalRecall.objects.none()
        return HospitalRecall.objects.filter(hospital=self.hospital).prefetch_related(
            Prefetch("units", queryset=HospitalRecallUnit.objects.order_by("din", "id"))
        )
