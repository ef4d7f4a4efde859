"""Hospital-local units: list, transfuse, discard, summary."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from hospitals.permissions import HospitalScopedMixin
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from local_inventory import selectors, services
from local_inventory.api.serializers import (
    DiscardSerializer,
    LocalSummaryRowSerializer,
    LocalUnitSerializer,
    ReturnSerializer,
    TransfuseSerializer,
)
from local_inventory.models import LocalUnit

UNIT = {
    "id": "5d2e8f1a-3b4c-4d5e-9f60-7a8b9c0d1e2f",
    "bank_unit_id": "a1d3c6e2-5b7f-4c08-9e21-3f4a5b6c7d80",
    "din": "G123426000421",
    "product_code": "E0398V00",
    "division": "00",
    "component": "RED_CELLS",
    "blood_group": "O-",
    "expires_at": "2026-12-20T00:00:00Z",
    "special_attributes": ["IRRADIATED", "LEUKOREDUCED"],
    "batch": "BATCH-2611-07",
    "source_request_id": "3f6c2a9e-8d41-4f7b-9a55-0c1e2b7d4a10",
    "status": "AVAILABLE",
    "status_reason": "",
    "status_changed_by": None,
    "status_changed_at": None,
    "received_at": "2026-11-29T07:10:00Z",
    "patient_reference": "",
    "started_at": None,
    "ended_at": None,
    "adverse_reaction": False,
    "waste_reason": "",
    "left_storage_at": None,
    "returned_at": None,
    "cold_chain_intact": None,
}
_CHANGED = {"status_changed_by": "stmary_staff", "status_changed_at": "2026-11-29T08:30:00Z"}
UNIT_EXAMPLE = OpenApiExample("A unit in stock", value=UNIT, response_only=True)
NOT_AVAILABLE = OpenApiResponse(
    description="The unit's status does not allow this: it already has another fate, is quarantined (recalled), "
    "or had expired."
)


class UnitConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The unit is not available."
    default_code = "conflict"


@extend_schema_view(
    list=extend_schema(
        summary="List this hospital's local units",
        description="Units received from the bank, soonest expiry first; filters `status`, `blood_group`, `component`.",
        examples=[UNIT_EXAMPLE],
    ),
    retrieve=extend_schema(
        summary="One local unit", description="Another hospital's unit is 404.", examples=[UNIT_EXAMPLE]
    ),
)
class LocalUnitViewSet(HospitalScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = LocalUnitSerializer
    filterset_fields = ["status", "blood_group", "component"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return LocalUnit.objects.none()
        return selectors.local_units(hospital=self.hospital).select_related("status_changed_by")

    def _act(self, action_fn, serializer_class, request: Request, pk: str | None) -> Response:
        self.get_object()  # another hospital's unit is 404 whatever the body
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            unit = action_fn(
                unit_id=self.object_id(pk), hospital=self.hospital, user=request.user, **serializer.validated_data
            )
        except LocalUnit.DoesNotExist:
            raise Http404 from None
        except services.UnitNotAvailable as exc:
            raise UnitConflict(str(exc)) from None
        return Response(LocalUnitSerializer(unit).data)

    @extend_schema(
        summary="Record that a unit was transfused",
        description="Only an `AVAILABLE` unit not expired at `started_at` (a quarantined, recalled unit: 409). "
        "`patient_reference` is opaque, never a name. The fate goes to the bank (`hospital.unit.fate`). "
        "The same fate and fields again: 200, nothing sent; another fate: 409.",
        request=TransfuseSerializer,
        responses={200: LocalUnitSerializer, 409: NOT_AVAILABLE},
        examples=[
            OpenApiExample(
                "Transfused",
                value={
                    "patient_reference": "MRN-000123",
                    "started_at": "2026-11-29T08:00:00Z",
                    "ended_at": "2026-11-29T09:30:00Z",
                    "adverse_reaction": False,
                },
                request_only=True,
            ),
            OpenApiExample(
                "The unit now",
                value=UNIT
                | _CHANGED
                | {
                    "status": "TRANSFUSED",
                    "patient_reference": "MRN-000123",
                    "started_at": "2026-11-29T08:00:00Z",
                    "ended_at": "2026-11-29T09:30:00Z",
                },
                response_only=True,
            ),
        ],
    )
    @action(detail=True, methods=["post"])
    def transfuse(self, request: Request, pk: str | None = None) -> Response:
        return self._act(services.transfuse_unit, TransfuseSerializer, request, pk)

    @extend_schema(
        summary="Record that a unit was wasted",
        description="An `AVAILABLE` or `QUARANTINED` unit; `reason` is coded (`note` stays here, required for "
        "`OTHER`). The fate goes to the bank.",
        request=DiscardSerializer,
        responses={200: LocalUnitSerializer, 409: NOT_AVAILABLE},
        examples=[
            OpenApiExample("Wasted", value={"reason": "TEMPERATURE_EXCURSION", "note": ""}, request_only=True),
            OpenApiExample(
                "The unit now",
                value=UNIT | _CHANGED | {"status": "WASTED", "waste_reason": "TEMPERATURE_EXCURSION"},
                response_only=True,
            ),
        ],
    )
    @action(detail=True, methods=["post"])
    def discard(self, request: Request, pk: str | None = None) -> Response:
        return self._act(services.discard_unit, DiscardSerializer, request, pk)

    @extend_schema(
        summary="Return a unit to the bank",
        description="An `AVAILABLE` or `QUARANTINED` unit. The bank decides whether it goes back to stock: red "
        "cells and whole blood only within 30 minutes out of the fridge with the cold chain intact, platelets "
        "never refrigerated, plasma and cryo still frozen.",
        request=ReturnSerializer,
        responses={200: LocalUnitSerializer, 409: NOT_AVAILABLE},
        examples=[
            OpenApiExample(
                "Returned",
                value={
                    "left_storage_at": "2026-11-29T08:00:00Z",
                    "returned_at": "2026-11-29T08:20:00Z",
                    "cold_chain_intact": True,
                },
                request_only=True,
            ),
            OpenApiExample(
                "The unit now",
                value=UNIT
                | _CHANGED
                | {
                    "status": "RETURNED",
                    "left_storage_at": "2026-11-29T08:00:00Z",
                    "returned_at": "2026-11-29T08:20:00Z",
                    "cold_chain_intact": True,
                },
                response_only=True,
            ),
        ],
    )
    @action(detail=True, methods=["post"], url_path="return")
    def return_to_bank(self, request: Request, pk: str | None = None) -> Response:
        return self._act(services.return_unit, ReturnSerializer, request, pk)


class LocalSummaryView(HospitalScopedMixin, APIView):
    @extend_schema(
        summary="Local stock by component and blood group",
        description="Counts of this hospital's units by status, and those expiring within 72 hours.",
        responses={200: LocalSummaryRowSerializer(many=True)},
        examples=[
            OpenApiExample(
                "O- red cells",
                value={  # one row: drf-spectacular wraps it in the list
                    "component": "RED_CELLS",
                    "blood_group": "O-",
                    "available_units": 3,
                    "expiring_within_72h": 1,
                    "transfused_units": 5,
                    "discarded_units": 1,
                    "expired_units": 0,
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request) -> Response:
        rows = selectors.local_summary(hospital=self.hospital)
        return Response(LocalSummaryRowSerializer(rows, many=True).data)
