from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from inventory.models import COMPONENT_CHOICES
from inventory.permissions import IsBankStaff
from rest_framework import viewsets

from allocation import selectors
from allocation.api.serializers import BankRequestSerializer
from allocation.models import PRIORITY_CHOICES, REQUEST_GROUP_CHOICES, BankRequest, RequestStatus
from shared_events.enums import RequestProtocol, choices


class BankRequestFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=RequestStatus.choices)
    priority = django_filters.ChoiceFilter(choices=PRIORITY_CHOICES)
    component = django_filters.ChoiceFilter(choices=COMPONENT_CHOICES)
    blood_group = django_filters.ChoiceFilter(choices=REQUEST_GROUP_CHOICES)
    protocol = django_filters.ChoiceFilter(choices=choices(RequestProtocol))
    hospital_id = django_filters.UUIDFilter()

    class Meta:
        model = BankRequest
        fields = ["status", "priority", "protocol", "component", "blood_group", "hospital_id"]


REQUEST = {
    "id": "3f6c2a9e-8d41-4f7b-9a55-0c1e2b7d4a10",
    "hospital_id": "6b0f4c3e-2a7d-4e19-8c55-91d2f0a3b7e4",
    "hospital_name": "St Mary's Hospital",
    "blood_group": "O-",
    "protocol": "STANDARD",
    "component": "RED_CELLS",
    "units_requested": 2,
    "priority": "EMERGENCY",
    "needed_by": None,
    "allow_partial": True,
    "authorised_by": "",
    "group_confirmed": True,
    "rhd_negative_required": True,
    "special_requirements": ["IRRADIATED"],
    "antigen_negative": ["K"],
    "uncrossmatched": False,
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
            "product_code": "E0398V00",
            "division": "00",
            "special_attributes": ["IRRADIATED", "LEUKOREDUCED"],
            "unit_status": "ALLOCATED",
            "pack": None,
            "allocated_at": "2026-11-29T06:00:00.150000Z",
            "released_at": None,
            "release_reason": "",
        }
    ],
    "packs": [],
    "cancelled_at": None,
    "cancelled_by": "",
    "cancel_reason_code": None,
    "mtp_stopped_at": None,
    "mtp_stopped_by": "",
}
REQUEST_EXAMPLE = OpenApiExample("An approved EMERGENCY request", value=REQUEST, response_only=True)
MTP_REQUEST = REQUEST | {
    "blood_group": "UNKNOWN",
    "protocol": "MTP",
    "component": "",
    "units_requested": None,
    "authorised_by": "dr_khan",
    "group_confirmed": False,
    "special_requirements": [],
    "antigen_negative": [],
    "uncrossmatched": True,
    "status": "MTP_ACTIVE",
    "decision": REQUEST["decision"] | {"status": "MTP_ACTIVE", "detail": "pack 1: 8 of 8 units allocated"},
    "allocations": [REQUEST["allocations"][0] | {"special_attributes": [], "pack": 1}],
    "packs": [
        {
            "number": 1,
            "status": "APPROVED",
            "reason_code": "",
            "detail": "pack 1: 8 of 8 units allocated (4 RED_CELLS, 4 PLASMA)",
            "units_requested": 8,
            "units_allocated": 8,
            "requested_by": "",
            "requested_at": None,
            "decided_at": "2026-11-29T06:00:00.150000Z",
            "event_id": "c7a1e9d2-4b3f-4e8a-9c01-2d3e4f5a6b7c",
        }
    ],
}
MTP_EXAMPLE = OpenApiExample("An MTP emergency release, pack 1 decided", value=MTP_REQUEST, response_only=True)


@extend_schema_view(
    list=extend_schema(
        summary="List requests received from hospitals",
        description="Filters `status`, `priority`, `protocol`, `component`, `blood_group` (incl. `UNKNOWN`: "
        "emergency release), `hospital_id`. An MTP request has no `component`/`units_requested`; its `packs` "
        "list each pack's decision, and its allocations say which `pack` they belong to.",
        examples=[REQUEST_EXAMPLE, MTP_EXAMPLE],
    ),
    retrieve=extend_schema(
        summary="One request, with its decision, allocated units and MTP packs",
        examples=[REQUEST_EXAMPLE, MTP_EXAMPLE],
    ),
)
class BankRequestViewSet(viewsets.ReadOnlyModelViewSet):
    """Requests as the bank saw them, with decision and allocations."""

    permission_classes = [IsBankStaff]
    serializer_class = BankRequestSerializer
    filterset_class = BankRequestFilter
    lookup_field = "request_id"

    def get_queryset(self):
        return selectors.requests()
