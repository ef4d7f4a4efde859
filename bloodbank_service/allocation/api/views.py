from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from inventory.models import COMPONENT_CHOICES, GROUP_CHOICES
from inventory.permissions import IsBankStaff
from rest_framework import viewsets

from allocation import selectors
from allocation.api.serializers import BankRequestSerializer
from allocation.models import PRIORITY_CHOICES, BankRequest, RequestStatus


class BankRequestFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=RequestStatus.choices)
    priority = django_filters.ChoiceFilter(choices=PRIORITY_CHOICES)
    component = django_filters.ChoiceFilter(choices=COMPONENT_CHOICES)
    blood_group = django_filters.ChoiceFilter(choices=GROUP_CHOICES)
    hospital_id = django_filters.UUIDFilter()

    class Meta:
        model = BankRequest
        fields = ["status", "priority", "component", "blood_group", "hospital_id"]


REQUEST = {
    "id": "3f6c2a9e-8d41-4f7b-9a55-0c1e2b7d4a10",
    "hospital_id": "6b0f4c3e-2a7d-4e19-8c55-91d2f0a3b7e4",
    "hospital_name": "St Mary's Hospital",
    "blood_group": "O-",
    "component": "RED_CELLS",
    "units_requested": 2,
    "priority": "EMERGENCY",
    "needed_by": None,
    "allow_partial": True,
    "patient_reference": "MRN-000123",
    "indication": "TRAUMA",
    "requested_by": "stmary_staff",
    "requested_at": "2026-11-29T06:00:00.120000Z",
    "received_at": "2026-11-29T06:00:00.131000Z",
    "status": "APPROVED",
    "decision": {
        "status": "APPROVED",
        "reason_code": "",
        "detail": "2 of 2 units allocated",
        "units_allocated": 2,
        "decided_at": "2026-11-29T06:00:00.150000Z",
        "event_id": "c7a1e9d2-4b3f-4e8a-9c01-2d3e4f5a6b7c",
    },
    "allocations": [
        {
            "unit_id": "a1d3c6e2-5b7f-4c08-9e21-3f4a5b6c7d80",
            "din": "G123426000421",
            "component": "RED_CELLS",
            "blood_group": "O-",
            "expires_at": "2026-12-20T09:30:00Z",
            "batch": "BATCH-2611-07",
            "unit_status": "ALLOCATED",
            "allocated_at": "2026-11-29T06:00:00.150000Z",
            "released_at": None,
            "release_reason": "",
        }
    ],
    "cancelled_at": None,
    "cancelled_by": "",
    "cancel_reason_code": None,
}
REQUEST_EXAMPLE = OpenApiExample("An approved EMERGENCY request", value=REQUEST, response_only=True)


@extend_schema_view(
    list=extend_schema(
        summary="List requests received from hospitals",
        description="Filters `status`, `priority`, `component`, `blood_group`, `hospital_id`.",
        examples=[REQUEST_EXAMPLE],
    ),
    retrieve=extend_schema(summary="One request, with its decision and allocated units", examples=[REQUEST_EXAMPLE]),
)
class BankRequestViewSet(viewsets.ReadOnlyModelViewSet):
    """Requests as the bank saw them, with decision and allocations."""

    permission_classes = [IsBankStaff]
    serializer_class = BankRequestSerializer
    filterset_class = BankRequestFilter
    lookup_field = "request_id"

    def get_queryset(self):
        return selectors.requests()
