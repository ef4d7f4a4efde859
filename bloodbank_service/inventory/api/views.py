from __future__ import annotations

import django_filters
from allocation.models import Allocation
from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory import selectors, services
from inventory.api import serializers as s
from inventory.models import COMPONENT_CHOICES, GROUP_CHOICES, Unit, UnitStatus
from inventory.permissions import IsBankStaff


class UnitFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=UnitStatus.choices)
    component = django_filters.ChoiceFilter(choices=COMPONENT_CHOICES)
    blood_group = django_filters.ChoiceFilter(choices=GROUP_CHOICES)
    expires_before = django_filters.IsoDateTimeFilter(field_name="expires_at", lookup_expr="lt")
    batch = django_filters.CharFilter()
    din = django_filters.CharFilter()

    class Meta:
        model = Unit
        fields = ["status", "component", "blood_group", "expires_before", "batch", "din"]


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

    @extend_schema(request=s.ReceiveUnitSerializer, responses={201: s.UnitSerializer})
    def create(self, request: Request) -> Response:
        incoming = s.ReceiveUnitSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        unit = services.receive_unit(**incoming.validated_data, by=request.user.get_username())
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

    @extend_schema(request=s.ReasonSerializer, responses={200: s.UnitDetailSerializer})
    @action(detail=True, methods=["post"])
    def quarantine(self, request: Request, pk: str) -> Response:
        return self._change(request, pk, UnitStatus.QUARANTINED)

    @extend_schema(request=s.ReasonSerializer, responses={200: s.UnitDetailSerializer})
    @action(detail=True, methods=["post"])
    def release(self, request: Request, pk: str) -> Response:
        return self._change(request, pk, UnitStatus.AVAILABLE)

    @extend_schema(request=s.ReasonSerializer, responses={200: s.UnitDetailSerializer})
    @action(detail=True, methods=["post"])
    def discard(self, request: Request, pk: str) -> Response:
        return self._change(request, pk, UnitStatus.DISCARDED)


class StockView(APIView):
    """Per component and blood group: counts, thresholds and level."""

    permission_classes = [IsBankStaff]

    @extend_schema(responses={200: s.StockRowSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(s.StockRowSerializer(selectors.stock_overview(), many=True).data)


class ThresholdsView(APIView):
    """Low and critical thresholds per component and group; PUT a list to change some."""

    permission_classes = [IsBankStaff]

    @extend_schema(responses={200: s.ThresholdSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(s.ThresholdSerializer(selectors.thresholds(), many=True).data)

    @extend_schema(request=s.ThresholdSerializer(many=True), responses={200: s.ThresholdSerializer(many=True)})
    def put(self, request: Request) -> Response:
        incoming = s.ThresholdListSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        services.update_thresholds(items=incoming.validated_data, by=request.user.get_username())
        return Response(s.ThresholdSerializer(selectors.thresholds(), many=True).data)
