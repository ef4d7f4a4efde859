"""Hospital-local units: list, transfuse, discard, summary."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
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
    TransfuseSerializer,
)
from local_inventory.models import LocalUnit


class UnitConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The unit is not available."
    default_code = "conflict"


class LocalUnitViewSet(HospitalScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = LocalUnitSerializer
    filterset_fields = ["status", "blood_group", "component"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return LocalUnit.objects.none()
        return selectors.local_units(hospital=self.hospital).select_related("status_changed_by")

    def _act(self, action_fn, serializer_class, request: Request, pk: str | None) -> Response:
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            unit = action_fn(unit_id=pk, hospital=self.hospital, user=request.user, **serializer.validated_data)
        except LocalUnit.DoesNotExist:
            raise Http404 from None
        except services.UnitNotAvailable as exc:
            raise UnitConflict(str(exc)) from None
        return Response(LocalUnitSerializer(unit).data)

    @extend_schema(request=TransfuseSerializer, responses={200: LocalUnitSerializer, 409: None})
    @action(detail=True, methods=["post"])
    def transfuse(self, request: Request, pk: str | None = None) -> Response:
        return self._act(services.transfuse_unit, TransfuseSerializer, request, pk)

    @extend_schema(request=DiscardSerializer, responses={200: LocalUnitSerializer, 409: None})
    @action(detail=True, methods=["post"])
    def discard(self, request: Request, pk: str | None = None) -> Response:
        return self._act(services.discard_unit, DiscardSerializer, request, pk)


class LocalSummaryView(HospitalScopedMixin, APIView):
    @extend_schema(responses={200: LocalSummaryRowSerializer(many=True)})
    def get(self, request: Request) -> Response:
        rows = selectors.local_summary(hospital=self.hospital)
        return Response(LocalSummaryRowSerializer(rows, many=True).data)
