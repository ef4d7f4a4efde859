"""The blood-request API: thin views over the services, scoped to the user's hospital."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from hospitals.permissions import HospitalScopedMixin
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response

from blood_requests import idempotency, selectors, services
from blood_requests.api import examples
from blood_requests.api.serializers import (
    BloodRequestCreateSerializer,
    BloodRequestSerializer,
    CancelSerializer,
    ReceiveSerializer,
)
from blood_requests.api.validation import validated_data
from blood_requests.lifecycle import InvalidTransition
from blood_requests.models import BloodRequest
from shared_events.django.representation import represent


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request's status does not allow this."
    default_code = "conflict"


class IdempotencyKeyConflict(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was already used with a different request body."
    default_code = "idempotency_key_reused"


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="A retry with the same key and body returns the first response and creates nothing; "
    "the same key with another body is refused with 422.",
)


@extend_schema_view(
    list=extend_schema(
        summary="List this hospital's blood requests",
        description="Newest first, filtered by `status`, `priority`, `blood_group`, `component`; "
        "only the caller's hospital's requests.",
        examples=[examples.APPROVED],
    ),
    retrieve=extend_schema(
        summary="One blood request, with its status history, decision and allocated units",
        description="Another hospital's request is 404.",
        examples=[examples.APPROVED, examples.MTP_ACTIVE],
    ),
)
class BloodRequestViewSet(
    HospitalScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = BloodRequestSerializer
    filterset_fields = ["status", "priority", "blood_group", "component"]
    lookup_value_regex = "[0-9a-fA-F-]{36}"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return BloodRequest.objects.none()
        return selectors.blood_requests(hospital=self.hospital)

    @extend_schema(
        summary="Request blood from the bank",
        description="Creates a `PENDING` request and publishes `hospital.blood.requested` (v2); the bank's "
        "decision arrives within moments (`APPROVED`, `PARTIALLY_APPROVED` or `REJECTED`; an MTP request becomes "
        "`MTP_ACTIVE` from its pack 1's decision). `patient_reference` is an opaque record number, never a name. "
        "`group_confirmed` defaults to false: group O red cells and AB plasma then, whatever the stated group. "
        "`blood_group: UNKNOWN` (emergency release) needs `EMERGENCY` and `authorised_by`, and refuses "
        "`allow_partial: false` and `WHOLE_BLOOD`; `WHOLE_BLOOD` needs `group_confirmed`; `protocol: MTP` needs "
        "`EMERGENCY` and `authorised_by` and takes no `component` or `units`. A broken rule is a 400 with field "
        "errors, and nothing is recorded or published.",
        request=BloodRequestCreateSerializer,
        responses={
            201: BloodRequestSerializer,
            422: OpenApiResponse(description="This Idempotency-Key was already used with a different request body."),
        },
        parameters=[IDEMPOTENCY_KEY],
        examples=[
            examples.CREATE_EMERGENCY,
            examples.CREATE_SCHEDULED,
            examples.CREATE_EMERGENCY_RELEASE,
            examples.CREATE_MTP,
            examples.CREATE_SCHEDULED_REQUIREMENTS,
            examples.CREATED,
            examples.CREATED_MTP,
        ],
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            code, body = self._create(request)
            return Response(body, status=code)
        if not key.strip() or len(key) > idempotency.MAX_KEY_LENGTH:
            raise serializers.ValidationError({"Idempotency-Key": "Must be 1 to 255 characters."})
        body_in = request.data.dict() if hasattr(request.data, "dict") else request.data
        try:
            code, body = idempotency.run_once(
                hospital=self.hospital, user=request.user, key=key, body=body_in, action=lambda: self._create(request)
            )
        except idempotency.IdempotencyKeyReused:
            raise IdempotencyKeyConflict() from None
        return Response(body, status=code)

    def _create(self, request: Request) -> tuple[int, Any]:
        data = validated_data(BloodRequestCreateSerializer, request.data)  # fields built once per thread
        blood_request = services.create_blood_request(
            hospital=self.hospital, user=request.user, **data
        )  # with its history loaded: nothing is read back
        return status.HTTP_201_CREATED, represent(BloodRequestSerializer, blood_request)

    @extend_schema(
        summary="Cancel a request",
        description="Allowed while `PENDING`, `APPROVED`, `PARTIALLY_APPROVED` or `DISPATCHED` (an `MTP_ACTIVE` "
        "request is ended with `stop-mtp`: 409); the bank releases units still allocated. "
        "Units already dispatched are not put back on the bank's shelf: receive them and "
        "record each one's fate (e.g. return).",
        request=CancelSerializer,
        responses={
            200: BloodRequestSerializer,
            409: OpenApiResponse(description="The request can no longer be cancelled."),
        },
        examples=[examples.CANCEL, examples.CANCELLED],
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        serializer = CancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.cancel_blood_request(
                blood_request_id=self.object_id(pk),
                hospital=self.hospital,
                user=request.user,
                reason=serializer.validated_data["reason"],
                reason_code=serializer.validated_data["reason_code"],
            )
        except BloodRequest.DoesNotExist:
            raise Http404 from None
        except InvalidTransition as exc:
            raise Conflict(str(exc)) from None
        return Response(represent(BloodRequestSerializer, self.get_object()))

    @extend_schema(
        summary="Receive the dispatched units by scanning their DINs",
        description="Allowed once the bank has dispatched the units (`DISPATCHED`, or `CANCELLED` after "
        "dispatch). The scanned `dins` must equal the dispatched units' DINs as a multiset; otherwise 409 with "
        "`unexpected_dins` and `missing_dins` and nothing is recorded. Then the units enter the local inventory, "
        "the request becomes `FULFILLED` and `hospital.units.received` is published. An MTP request is received "
        "one pack at a time (`pack`; default the oldest dispatched pack not yet received); it becomes `FULFILLED` "
        "once stopped and every dispatched pack is received. `pack` on a STANDARD request, or a pack the request "
        "does not have, is a 400.",
        request=ReceiveSerializer,
        responses={
            200: BloodRequestSerializer,
            409: OpenApiResponse(description="Not dispatched (or already received), or the DINs do not match."),
        },
        examples=[examples.RECEIVE, examples.RECEIVE_PACK, examples.FULFILLED],
    )
    @action(detail=True, methods=["post"])
    def receive(self, request: Request, pk: str | None = None) -> Response:
        self.get_object()  # another hospital's request is 404 whatever the body
        serializer = ReceiveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.receive_blood_request(
                blood_request_id=self.object_id(pk),
                hospital=self.hospital,
                user=request.user,
                dins=serializer.validated_data["dins"],
                pack=serializer.validated_data.get("pack"),
            )
        except BloodRequest.DoesNotExist:
            raise Http404 from None
        except services.UnknownPack as exc:
            raise serializers.ValidationError({"pack": [str(exc)]}) from None
        except InvalidTransition as exc:
            raise Conflict(str(exc)) from None
        except services.ReceiptMismatch as exc:
            return Response(
                {"detail": str(exc), "unexpected_dins": exc.unexpected_dins, "missing_dins": exc.missing_dins},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(represent(BloodRequestSerializer, self.get_object()))

    @extend_schema(
        summary="MTP: ask for the next pack",
        description="Publishes `hospital.mtp.pack_requested` with pack = the last pack + 1 (red cells, plasma and, "
        "from pack 2, platelets, as the bank composes it). 409 unless the request is `MTP_ACTIVE`, not stopped, "
        "and its last pack decided by the bank.",
        request=None,
        responses={
            200: BloodRequestSerializer,
            409: OpenApiResponse(description="Not an active MTP, stopped, or the last pack is not decided yet."),
        },
        examples=[examples.MTP_ACTIVE],
    )
    @action(detail=True, methods=["post"], url_path="next-pack")
    def next_pack(self, request: Request, pk: str | None = None) -> Response:
        return self._mtp_step(services.request_next_pack, pk)

    @extend_schema(
        summary="MTP: stop the protocol",
        description="Publishes `hospital.mtp.stopped`: the bank releases the units it has not dispatched "
        "(`MTP_STOPPED`) and decides no further pack; a pack not yet decided becomes `STOPPED`. The request "
        "becomes `FULFILLED` once every dispatched pack is received, or `CANCELLED` at once when no pack was ever "
        "dispatched (nothing was supplied). 409 unless `MTP_ACTIVE` and not stopped already.",
        request=None,
        responses={
            200: BloodRequestSerializer,
            409: OpenApiResponse(description="Not an active MTP, or already stopped."),
        },
        examples=[examples.MTP_STOPPED],
    )
    @action(detail=True, methods=["post"], url_path="stop-mtp")
    def stop_mtp(self, request: Request, pk: str | None = None) -> Response:
        return self._mtp_step(services.stop_mtp, pk)

    def _mtp_step(self, step: Callable[..., object], pk: str | None) -> Response:
        """Run an MTP step (next pack, stop) of this hospital's request: 404 if not its own, 409 if not now."""
        try:
            step(blood_request_id=self.object_id(pk), hospital=self.hospital, user=self.request.user)
        except BloodRequest.DoesNotExist:
            raise Http404 from None
        except InvalidTransition as exc:
            raise Conflict(str(exc)) from None
        return Response(represent(BloodRequestSerializer, self.get_object()))
