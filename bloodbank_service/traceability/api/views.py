"""Traceability API of the bank: dispatch, a DIN's trace and FHIR export, recalls. Thin views over services."""

from __future__ import annotations

from allocation.models import BankRequest
from django.http import Http404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from inventory.din import InvalidDIN, normalize_din
from inventory.models import Unit
from inventory.permissions import IsBankStaff
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from traceability import fhir, selectors, services
from traceability.api import serializers as s

REQUEST_ID = "3f6c2a9e-8d41-4f7b-9a55-0c1e2b7d4a10"
HOSPITAL_ID = "6b0f4c3e-2a7d-4e19-8c55-91d2f0a3b7e4"
UNIT_ID = "a1d3c6e2-5b7f-4c08-9e21-3f4a5b6c7d80"
DIN = "G123426000421"
CONFLICT = OpenApiResponse(description="Not allowed in the current state (nothing was changed).")
BAD_DIN = OpenApiResponse(description="Not an ISBT 128 DIN, or its check character does not match.")

DISPATCHED = {
    "request_id": REQUEST_ID,
    "pack": None,
    "dispatched_at": "2026-11-29T06:20:00Z",
    "dispatched_by": "bank_admin",
    "courier": "Blood bike 3",
    "note": "",
    "units": [
        {
            "unit_id": UNIT_ID,
            "din": DIN,
            "product_code": "E0398V00",
            "division": "00",
            "component": "RED_CELLS",
            "blood_group": "O-",
            "expires_at": "2026-12-20T09:30:00Z",
            "special_attributes": ["LEUKOREDUCED"],
        }
    ],
}
TRACE = {
    "din": DIN,
    "units": [
        {
            "unit_id": UNIT_ID,
            "product_code": None,
            "division": "00",
            "component": "RED_CELLS",
            "blood_group": "O-",
            "status": "TRANSFUSED",
            "recalled": False,
            "events": [
                {
                    "step": "RECEIVED_AT_BANK",
                    "at": "2026-11-20T10:00:00Z",
                    "by": "bank_admin",
                    "hospital_id": None,
                    "request_id": None,
                    "status": "AVAILABLE",
                    "detail": {"reason": "received"},
                },
                {
                    "step": "ALLOCATED",
                    "at": "2026-11-29T06:00:00Z",
                    "by": "system",
                    "hospital_id": HOSPITAL_ID,
                    "request_id": REQUEST_ID,
                    "status": "ALLOCATED",
                    "detail": {},
                },
                {
                    "step": "DISPATCHED",
                    "at": "2026-11-29T06:20:00Z",
                    "by": "bank_admin",
                    "hospital_id": HOSPITAL_ID,
                    "request_id": REQUEST_ID,
                    "status": "ISSUED",
                    "detail": {},
                },
                {
                    "step": "RECEIVED_BY_HOSPITAL",
                    "at": "2026-11-29T06:45:00Z",
                    "by": "stmary_staff",
                    "hospital_id": HOSPITAL_ID,
                    "request_id": REQUEST_ID,
                    "status": "ISSUED",
                    "detail": {},
                },
                {
                    "step": "TRANSFUSED",
                    "at": "2026-11-29T07:10:00Z",
                    "by": "stmary_staff",
                    "hospital_id": HOSPITAL_ID,
                    "request_id": REQUEST_ID,
                    "status": "TRANSFUSED",
                    "detail": {
                        "patient_reference": "MRN-000123",
                        "started_at": "2026-11-29T07:10:00+00:00",
                        "adverse_reaction": False,
                    },
                },
            ],
        }
    ],
}
RECALL = {
    "id": "0b7e6f2d-1c3a-4e5f-8a9b-0c1d2e3f4a5b",
    "dins": [DIN],
    "reason": "DONOR_INFECTION",
    "note": "",
    "severity": "HIGH",
    "status": "OPEN",
    "issued_by": "bank_admin",
    "issued_at": "2026-12-01T09:00:00Z",
    "closed_by": "",
    "closed_at": None,
    "units": [
        {
            "unit_id": UNIT_ID,
            "din": DIN,
            "component": "RED_CELLS",
            "bank_status": "TRANSFUSED",
            "hospital_id": HOSPITAL_ID,
            "request_id": REQUEST_ID,
            "outcome": "TRANSFUSED",
            "answered_at": "2026-12-01T09:00:02Z",
            "patient_reference": "MRN-000123",
            "started_at": "2026-11-29T07:10:00Z",
            "accounted": True,
        }
    ],
}


class DispatchView(APIView):
    permission_classes = [IsBankStaff]

    @extend_schema(
        summary="Dispatch the units allocated to a request",
        description="The request's `ALLOCATED` units become `ISSUED` and `bloodbank.units.dispatched` is published "
        "in the same transaction. `courier` and `note` stay at the bank. An MTP request is dispatched pack by "
        "pack: `pack` (default: the oldest pack with units still allocated), carried by the event; `pack` on a "
        "STANDARD request is a 400. 409 when no unit is left to dispatch.",
        request=s.DispatchInSerializer,
        responses={201: s.DispatchSerializer, 409: CONFLICT},
        examples=[
            OpenApiExample("Dispatch", value={"courier": "Blood bike 3", "note": ""}, request_only=True),
            OpenApiExample("Dispatch MTP pack 2", value={"courier": "Blood bike 3", "pack": 2}, request_only=True),
            OpenApiExample("Dispatched", value=DISPATCHED, response_only=True),
        ],
    )
    def post(self, request: Request, request_id: str) -> Response:
        incoming = s.DispatchInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            dispatch = services.dispatch_request(
                request_id=request_id, by=request.user.get_username(), **incoming.validated_data
            )
        except BankRequest.DoesNotExist:
            raise Http404 from None
        except services.PackNotApplicable as exc:
            raise ValidationError({"pack": [str(exc)]}) from None
        except services.NothingToDispatch as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(s.DispatchSerializer(dispatch).data, status=status.HTTP_201_CREATED)


def _din(text: str) -> str:
    try:
        return normalize_din(text)
    except InvalidDIN as exc:
        raise ParseError(str(exc)) from None  # 400 {"detail": ...}: the path, not a body field


class TraceView(APIView):
    permission_classes = [IsBankStaff]

    @extend_schema(
        summary="The whole chain of a donation (DIN), vein to vein",
        description="Every unit of the DIN with its steps in time order: received, allocated, dispatched, "
        "received by the hospital, its fate (transfused, wasted, returned), restocked, recalled. "
        "`by` is a username or `system`. A DIN with or without its check character; unknown → 404.",
        responses={200: s.TraceSerializer, 400: BAD_DIN},
        examples=[OpenApiExample("A transfused unit", value=TRACE, response_only=True)],
    )
    def get(self, request: Request, din: str) -> Response:
        try:
            return Response(s.TraceSerializer(selectors.unit_trace(din=_din(din))).data)
        except Unit.DoesNotExist:
            raise Http404 from None


class FhirView(APIView):
    permission_classes = [IsBankStaff]

    @extend_schema(
        summary="FHIR R5 Bundle of a donation (DIN)",
        description="A `collection` Bundle: one `BiologicallyDerivedProduct` per unit of the DIN and one "
        "`BiologicallyDerivedProductDispense` per allocation that left or may leave the bank.",
        responses={200: OpenApiResponse(description="FHIR R5 Bundle (JSON)"), 400: BAD_DIN},
        examples=[
            OpenApiExample(
                "Bundle",
                value={"resourceType": "Bundle", "type": "collection", "entry": []},
                response_only=True,
            )
        ],
    )
    def get(self, request: Request, din: str) -> Response:
        try:
            return Response(fhir.donation_bundle_json(din=_din(din)))
        except Unit.DoesNotExist:
            raise Http404 from None


@extend_schema_view(
    list=extend_schema(summary="List recalls", examples=[OpenApiExample("A recall", value=RECALL, response_only=True)]),
    retrieve=extend_schema(
        summary="One recall: per unit, its hospital and what is known of it",
        description="`outcome` null/blank: no answer yet. Accounted: `QUARANTINED_AT_BANK`, `DISCARDED_AT_BANK`, "
        "`TRANSFUSED`, `WASTED`, `RETURNED`.",
        examples=[OpenApiExample("A recall", value=RECALL, response_only=True)],
    ),
)
class RecallViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsBankStaff]
    serializer_class = s.RecallSerializer
    lookup_value_regex = "[0-9a-fA-F-]{36}"

    def get_queryset(self):
        return selectors.recalls()

    @extend_schema(
        summary="Recall donations",
        description="Every unit of the DINs: in bank stock → `QUARANTINED`; allocated → released (`RECALLED`) "
        "and quarantined; issued → listed to its hospital in `bloodbank.recall.issued`. Unknown DINs → 400 "
        "listing them; nothing is changed.",
        request=s.RecallCreateSerializer,
        responses={201: s.RecallSerializer},
        examples=[
            OpenApiExample(
                "Recall", value={"dins": [DIN], "reason": "DONOR_INFECTION", "severity": "HIGH"}, request_only=True
            ),
            OpenApiExample("Recalled", value=RECALL, response_only=True),
        ],
    )
    def create(self, request: Request) -> Response:
        incoming = s.RecallCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            recall = services.issue_recall(**incoming.validated_data, by=request.user.get_username())
        except services.UnknownDins as exc:
            raise ValidationError({"dins": [f"unknown DIN: {din}" for din in exc.dins]}) from None
        return Response(self.get_serializer(self.get_queryset().get(pk=recall.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Close a recall once every unit is accounted for",
        request=None,
        responses={200: s.RecallSerializer, 409: CONFLICT},
        examples=[OpenApiExample("Closed", value=RECALL | {"status": "CLOSED"}, response_only=True)],
    )
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str | None = None) -> Response:
        recall = self.get_object()
        try:
            services.close_recall(recall_id=recall.pk, by=request.user.get_username())
        except services.RecallNotAccounted as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(self.get_serializer(self.get_queryset().get(pk=recall.pk)).data)
