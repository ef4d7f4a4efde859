from __future__ import annotations

from datetime import UTC, datetime

import django_filters
from allocation.models import Allocation
from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory import selectors, services
from inventory.api import examples
from inventory.api import serializers as s
from inventory.models import ANTIGEN_CHOICES, ATTRIBUTE_CHOICES, COMPONENT_CHOICES, GROUP_CHOICES, Unit, UnitStatus
from inventory.permissions import IsBankStaff
from inventory.receipt import ReceiptError


class UnitFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=UnitStatus.choices)
    component = django_filters.ChoiceFilter(choices=COMPONENT_CHOICES)
    blood_group = django_filters.ChoiceFilter(choices=GROUP_CHOICES)
    expires_before = django_filters.IsoDateTimeFilter(method="filter_expires_before")
    batch = django_filters.CharFilter()
    din = django_filters.CharFilter()
    product_code = django_filters.CharFilter(help_text="the whole 8-character product code")
    pdc = django_filters.CharFilter(
        field_name="product_code", lookup_expr="startswith", help_text="Product Description Code (5 characters)"
    )
    division = django_filters.CharFilter()
    special_attribute = django_filters.ChoiceFilter(
        choices=ATTRIBUTE_CHOICES, method="filter_special_attribute", label="units carrying this special attribute"
    )
    antigen_negative = django_filters.ChoiceFilter(
        choices=ANTIGEN_CHOICES, method="filter_antigen_negative", label="units typed negative for this antigen"
    )
    fate_overdue = django_filters.BooleanFilter(
        method="filter_fate_overdue", label="issued longer than FATE_OVERDUE_HOURS ago with no fate recorded"
    )

    class Meta:
        model = Unit
        fields = [
            "status",
            "component",
            "blood_group",
            "expires_before",
            "batch",
            "din",
            "product_code",
            "pdc",
            "division",
            "special_attribute",
            "antigen_negative",
            "fate_overdue",
        ]

    def filter_special_attribute(self, queryset, _name, value: str):
        return queryset.filter(special_attributes__contains=[value]) if value else queryset

    def filter_antigen_negative(self, queryset, _name, value: str):
        return queryset.filter(antigen_negative__contains=[value]) if value else queryset

    def filter_fate_overdue(self, queryset, _name, value: bool | None):
        from traceability.selectors import overdue_unit_ids

        if value is None:
            return queryset
        overdue = overdue_unit_ids()
        return queryset.filter(pk__in=overdue) if value else queryset.exclude(pk__in=overdue)

    def filter_expires_before(self, queryset, _name, value: datetime):
        # In UTC: PostgreSQL refuses UTC offsets beyond 15:59 that Python accepts (a 500 otherwise).
        try:
            return queryset.filter(expires_at__lt=value.astimezone(UTC))
        except OverflowError:
            raise ValidationError({"expires_before": ["Out of range."]}) from None


NOT_ALLOWED = OpenApiResponse(description="This status change is not allowed (e.g. the unit is allocated).")


@extend_schema_view(
    list=extend_schema(
        summary="List units",
        description="Filters `status`, `component`, `blood_group`, `expires_before`, `batch`, `din`, "
        "`product_code`, `pdc`, `division`, `special_attribute`, `antigen_negative`, "
        "`fate_overdue` (issued longer than `FATE_OVERDUE_HOURS` ago, no fate recorded yet).",
        examples=[examples.UNIT_LISTED],
    ),
    retrieve=extend_schema(summary="One unit, with its status history", examples=[examples.UNIT_DETAIL]),
)
class UnitViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Bank units: list/filter, receive, quarantine, release, discard."""

    permission_classes = [IsBankStaff]
    filterset_class = UnitFilter

    def get_queryset(self):
        queryset = selectors.units().prefetch_related(
            Prefetch("allocations", queryset=Allocation.objects.filter(released_at__isnull=True))
        )
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("history")
        return queryset

    def get_serializer_class(self):
        return s.UnitDetailSerializer if self.action == "retrieve" else s.UnitSerializer

    @extend_schema(
        summary="Receive a unit into stock",
        description="A unit is (DIN, product code, division): the components of one donation and the splits "
        "of one unit are separate units; the same three again → 400 (`din`). `din` is an ISBT 128 donation "
        "identification number (13 characters, or 14 with its ISO 7064 check character, which is validated). "
        "`product_code` (8 characters) gives the component (from its PDC in the product table: unknown → 400), "
        "the division and the product's attributes; sent alone, `component` gets its default code, division "
        "00. `expires_at` is the label's and required; an IRRADIATED red-cell unit needs `irradiated_at` and "
        "expires at most `IRRADIATED_RED_CELL_DAYS` days after it. Every problem → 400 with field errors, "
        "nothing recorded.",
        request=s.ReceiveUnitSerializer,
        responses={201: s.UnitSerializer},
        examples=[examples.RECEIVE, examples.RECEIVE_SPLIT, examples.RECEIVE_COMPONENT_ONLY, examples.RECEIVED],
    )
    def create(self, request: Request) -> Response:
        incoming = s.ReceiveUnitSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            unit = services.receive_unit(
                **incoming.validated_data, expiry_required=True, by=request.user.get_username()
            )
        except ReceiptError as exc:
            raise ValidationError(exc.errors) from exc
        return Response(s.UnitSerializer(unit).data, status=status.HTTP_201_CREATED)

    def _change(self, request: Request, pk: str, to: UnitStatus) -> Response:
        unit = self.get_object()
        incoming = s.ReasonSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            services.change_status(
                unit_ids=[unit.pk], to=to, reason=incoming.validated_data["reason"], by=request.user.get_username()
            )
        except services.TransitionError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except Unit.DoesNotExist as exc:
            raise NotFound() from exc
        return Response(s.UnitDetailSerializer(self.get_queryset().prefetch_related("history").get(pk=unit.pk)).data)

    @extend_schema(
        summary="Quarantine a unit (no longer allocatable)",
        description="With a `reason`; never on an allocated unit.",
        request=s.ReasonSerializer,
        responses={200: s.UnitDetailSerializer, 409: NOT_ALLOWED},
        examples=[examples.QUARANTINE, examples.UNIT_DETAIL],
    )
    @action(detail=True, methods=["post"])
    def quarantine(self, request: Request, pk: str) -> Response:
        return self._change(request, pk, UnitStatus.QUARANTINED)

    @extend_schema(
        summary="Release a quarantined unit back to stock",
        description="With a `reason`; never on an allocated unit.",
        request=s.ReasonSerializer,
        responses={200: s.UnitDetailSerializer, 409: NOT_ALLOWED},
        examples=[examples.RELEASE, examples.UNIT_DETAIL],
    )
    @action(detail=True, methods=["post"])
    def release(self, request: Request, pk: str) -> Response:
        return self._change(request, pk, UnitStatus.AVAILABLE)

    @extend_schema(
        summary="Discard a unit",
        description="`reason` a code: `EXPIRED`, `FAILED_TESTING`, `DAMAGED`, `RECALLED`, "
        "`TEMPERATURE_EXCURSION`, `OTHER` (+ `note`, required for OTHER); never on an allocated unit.",
        request=s.DiscardSerializer,
        responses={200: s.UnitDetailSerializer, 409: NOT_ALLOWED},
        examples=[examples.DISCARD, examples.DISCARD_OTHER, examples.UNIT_DETAIL],
    )
    @action(detail=True, methods=["post"])
    def discard(self, request: Request, pk: str) -> Response:
        unit = self.get_object()
        incoming = s.DiscardSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            services.discard_units(unit_ids=[unit.pk], **incoming.validated_data, by=request.user.get_username())
        except services.DiscardReasonError as exc:
            raise ValidationError(exc.errors) from exc
        except services.TransitionError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(s.UnitDetailSerializer(self.get_queryset().prefetch_related("history").get(pk=unit.pk)).data)

    @extend_schema(
        summary="Record that a unit was irradiated",
        description="Adds IRRADIATED and `irradiated_at` (default now); a red-cell or whole-blood unit's expiry "
        "becomes at most `IRRADIATED_RED_CELL_DAYS` days after irradiation. Only a unit `AVAILABLE` or "
        "`QUARANTINED` and not irradiated yet (else 409); an irradiation after which it would have expired → 400.",
        request=s.IrradiateSerializer,
        responses={200: s.UnitDetailSerializer, 409: NOT_ALLOWED},
        examples=[examples.IRRADIATE, examples.UNIT_DETAIL],
    )
    @action(detail=True, methods=["post"])
    def irradiate(self, request: Request, pk: str) -> Response:
        unit = self.get_object()
        incoming = s.IrradiateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            services.irradiate_unit(unit_id=unit.pk, **incoming.validated_data, by=request.user.get_username())
        except ReceiptError as exc:
            raise ValidationError(exc.errors) from exc
        except services.TransitionError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(s.UnitDetailSerializer(self.get_queryset().prefetch_related("history").get(pk=unit.pk)).data)


class StockView(APIView):
    """Per component and blood group: counts, thresholds and level."""

    permission_classes = [IsBankStaff]

    @extend_schema(
        summary="Stock overview",
        description="Per component and blood group: available, allocated and expiring units, `days_of_supply` "
        "(available / (units dispatched in the last 28 days / 28), one decimal, null when none were dispatched), "
        "thresholds in units and in days, `level` (the worse of the level by units and by days) and "
        "`by_attribute` (available units carrying each special attribute).",
        responses={200: s.StockRowSerializer(many=True)},
        examples=[examples.STOCK],
    )
    def get(self, request: Request) -> Response:
        return Response(s.StockRowSerializer(selectors.stock_overview(), many=True).data)


class ThresholdsView(APIView):
    """Low and critical thresholds per component and group; PUT a list to change some."""

    permission_classes = [IsBankStaff]

    @extend_schema(
        summary="Low and critical stock thresholds",
        responses={200: s.ThresholdSerializer(many=True)},
        examples=[examples.THRESHOLDS_NOW],
    )
    def get(self, request: Request) -> Response:
        return Response(s.ThresholdSerializer(selectors.thresholds(), many=True).data)

    @extend_schema(
        summary="Change some thresholds",
        description="A list of thresholds, each component and blood group at most once; `critical_threshold` "
        "must not be above `low_threshold`, `critical_days` not above `low_days`. `low_days`/`critical_days` "
        "(days of supply; null: none) are kept when left out. Returns every threshold.",
        request=s.ThresholdSerializer(many=True),
        responses={200: s.ThresholdSerializer(many=True)},
        examples=[examples.THRESHOLDS_CHANGE, examples.THRESHOLDS_NOW],
    )
    def put(self, request: Request) -> Response:
        incoming = s.ThresholdListSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            services.update_thresholds(items=incoming.validated_data, by=request.user.get_username())
        except services.ThresholdError as exc:
            raise ValidationError(exc.errors) from exc
        return Response(s.ThresholdSerializer(selectors.thresholds(), many=True).data)


class ProductsView(APIView):
    """The configured ISBT 128 product table (PDCs)."""

    permission_classes = [IsBankStaff]

    @extend_schema(
        summary="Product Description Codes the bank receives",
        description="Each PDC's component, the special attributes it implies and its default shelf life (only "
        "a suggestion for the label's expiry). Kept in Django admin.",
        responses={200: s.ProductSerializer(many=True)},
        examples=[examples.PRODUCT],
    )
    def get(self, request: Request) -> Response:
        return Response(s.ProductSerializer(selectors.products(), many=True).data)
