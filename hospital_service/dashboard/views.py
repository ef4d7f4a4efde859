"""The live dashboard: a server-rendered page whose regions are refreshed by short polling.

The request form is validated by the API's own serializer and saved by the same service,
so the rules live once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from blood_requests import services as request_services
from blood_requests.api.serializers import BloodRequestCreateSerializer, ReceiveSerializer
from blood_requests.lifecycle import InvalidTransition
from blood_requests.models import (
    ANTIGEN_CHOICES,
    CANCEL_REASON_CHOICES,
    COMPONENT_CHOICES,
    INDICATION_CHOICES,
    PRIORITY_CHOICES,
    PROTOCOL_CHOICES,
    REQUEST_BLOOD_GROUP_CHOICES,
    SPECIAL_REQUIREMENT_CHOICES,
    BloodRequest,
)
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from hospitals.models import Hospital
from hospitals.selectors import hospital_of
from local_inventory import services as unit_services
from local_inventory.api.serializers import DiscardSerializer, ReturnSerializer, TransfuseSerializer
from local_inventory.models import LocalUnit

from dashboard.selectors import dashboard_state
from shared_events.enums import CancelReason, RequestProtocol

LIVE_REGIONS = {
    "requests": "dashboard/partials/requests.html",
    "local-stock": "dashboard/partials/local_stock.html",
    "bank-stock": "dashboard/partials/bank_stock.html",
    "alerts": "dashboard/partials/alerts.html",
}
# The dashboard form posts exactly what the API takes; the serializer is the one list of fields.
FORM_FIELDS = tuple(BloodRequestCreateSerializer().fields)
LIST_FIELDS = ("special_requirements", "antigen_negative")  # checkbox groups: several values
# Checkboxes: ``group_confirmed`` is absent (false, the API's default) unless ticked; ``rhd_negative_required``
# posts a hidden "false" before its checkbox, so the last value is what the nurse left (a post without it
# at all keeps the API's default, true).
CHECKBOX_FIELDS = ("group_confirmed", "rhd_negative_required")


def _hospital_or_403(request: HttpRequest) -> Hospital | HttpResponse:
    hospital = hospital_of(request.user)
    if hospital is None:
        return render(request, "dashboard/no_hospital.html", status=403)
    return hospital


def _form_context(values: dict[str, str] | None = None, errors: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "form_values": values or {"priority": "EMERGENCY", "units": "1", "protocol": "STANDARD"},
        "form_errors": errors or {},
        "blood_group_choices": REQUEST_BLOOD_GROUP_CHOICES,
        "component_choices": COMPONENT_CHOICES,
        "priority_choices": PRIORITY_CHOICES,
        "protocol_choices": PROTOCOL_CHOICES,
        "indication_choices": INDICATION_CHOICES,
        "special_requirement_choices": SPECIAL_REQUIREMENT_CHOICES,
        "antigen_choices": ANTIGEN_CHOICES,
    }


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    hospital = _hospital_or_403(request)
    if isinstance(hospital, HttpResponse):
        return hospital
    return render(request, "dashboard/dashboard.html", {**dashboard_state(hospital=hospital), **_form_context()})


@login_required
@require_GET
def state(request: HttpRequest) -> HttpResponse:
    """The live regions as HTML fragments, plus each shown request's status (polled every second)."""
    hospital = hospital_of(request.user)
    if hospital is None:
        return JsonResponse({"detail": "You are not a staff member of any hospital."}, status=403)
    context = dashboard_state(hospital=hospital)
    regions = {name: render_to_string(template, context, request=request) for name, template in LIVE_REGIONS.items()}
    statuses = {str(r.id): r.status for r in context["requests"]}
    return JsonResponse({"regions": regions, "statuses": statuses}, headers={"Cache-Control": "no-store"})


def _form_input(post: QueryDict) -> dict[str, Any]:
    """The form as API input: blank optional fields are left out so the API's defaults apply.

    Choosing MTP leaves out the component and units fields (the packs say what is sent), which the
    page hides then; with a STANDARD request they are the API's to check.
    """
    data: dict[str, Any] = {}
    for name in FORM_FIELDS:
        if name in LIST_FIELDS:
            values = [value.strip() for value in post.getlist(name) if value.strip()]
            if values:
                data[name] = values
            continue
        value = (post.getlist(name)[-1] if name in CHECKBOX_FIELDS and name in post else post.get(name, "")).strip()
        if value:
            data[name] = value
    if data.get("protocol") == RequestProtocol.MTP:
        data.pop("component", None)
        data.pop("units", None)
    return data


def _messages(errors: Any) -> list[str]:
    """A field's error messages, flat (a list field's errors come per item: ``{0: [...]}``)."""
    if isinstance(errors, dict):
        return [message for item in errors.values() for message in _messages(item)]
    if isinstance(errors, list):
        return [message for item in errors for message in _messages(item)]
    return [str(errors)]


def _form_values(post: QueryDict) -> dict[str, Any]:
    """What the nurse entered, to show the form again with its errors."""
    values: dict[str, Any] = {name: post.get(name, "") for name in FORM_FIELDS if name not in LIST_FIELDS}
    for name in CHECKBOX_FIELDS:
        values[name] = post.getlist(name)[-1] if name in post else ""
    for name in LIST_FIELDS:
        values[name] = post.getlist(name)
    return values


@login_required
@require_POST
def create_request(request: HttpRequest) -> HttpResponse:
    hospital = _hospital_or_403(request)
    if isinstance(hospital, HttpResponse):
        return hospital
    serializer = BloodRequestCreateSerializer(data=_form_input(request.POST))
    if not serializer.is_valid():
        values = _form_values(request.POST)
        errors = {field: _messages(errs) for field, errs in serializer.errors.items()}
        context = {**dashboard_state(hospital=hospital), **_form_context(values, errors)}
        return render(request, "dashboard/dashboard.html", context, status=400)
    blood_request = request_services.create_blood_request(
        hospital=hospital, user=request.user, **serializer.validated_data
    )
    if blood_request.is_mtp:
        what = f"massive transfusion protocol, group {blood_request.get_blood_group_display()}, pack 1 asked for"
    else:
        what = f"{blood_request.units} unit(s) of {blood_request.get_component_display()} {blood_request.blood_group}"
    messages.success(request, f"Request sent: {what}.")
    return redirect("dashboard:home")


def _run_action(request: HttpRequest, act: Callable[[Hospital], str]) -> HttpResponse:
    hospital = _hospital_or_403(request)
    if isinstance(hospital, HttpResponse):
        return hospital
    try:
        message = act(hospital)
    except (BloodRequest.DoesNotExist, LocalUnit.DoesNotExist):
        raise Http404 from None
    except (InvalidTransition, unit_services.UnitNotAvailable, DashboardInputError) as exc:
        messages.error(request, f"Not done: {exc}.")
    except request_services.ReceiptMismatch as exc:
        differences = [f"not dispatched: {', '.join(exc.unexpected_dins)}"] if exc.unexpected_dins else []
        differences += [f"missing: {', '.join(exc.missing_dins)}"] if exc.missing_dins else []
        messages.error(request, f"Not received: the scanned DINs do not match ({'; '.join(differences)}).")
    else:
        messages.success(request, message)
    return redirect("dashboard:home")


@login_required
@require_POST
def cancel_request(request: HttpRequest, request_id: str) -> HttpResponse:
    reason = request.POST.get("reason", "").strip()[:500]
    reason_code = request.POST.get("reason_code", "")
    if reason_code not in dict(CANCEL_REASON_CHOICES):
        reason_code = CancelReason.OTHER.value

    def act(hospital: Hospital) -> str:
        request_services.cancel_blood_request(
            blood_request_id=request_id, hospital=hospital, user=request.user, reason=reason, reason_code=reason_code
        )
        return "Request cancelled; the bank has been told."

    return _run_action(request, act)


class DashboardInputError(ValueError):
    """A dashboard form's input the API serializer refused."""


def _validated(serializer_class: type, data: dict[str, Any]) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise DashboardInputError(
            "; ".join(f"{field}: {' '.join(str(e) for e in errs)}" for field, errs in serializer.errors.items())
        )
    return serializer.validated_data


@login_required
@require_POST
def receive_request(request: HttpRequest, request_id: str) -> HttpResponse:
    scanned = request.POST.get("dins", "").replace(",", " ").split()
    body: dict[str, Any] = {"dins": scanned}
    if request.POST.get("pack", "").strip():
        body["pack"] = request.POST["pack"].strip()

    def act(hospital: Hospital) -> str:
        BloodRequest.objects.get(id=request_id, hospital=hospital)  # another hospital's: 404 whatever was posted
        fields = _validated(ReceiveSerializer, body)
        try:
            received = request_services.receive_blood_request(
                blood_request_id=request_id,
                hospital=hospital,
                user=request.user,
                dins=fields["dins"],
                pack=fields.get("pack"),
            )
        except request_services.UnknownPack as exc:
            raise DashboardInputError(str(exc)) from None
        pack = f" (pack {fields['pack']})" if fields.get("pack") else ""
        return f"{len(fields['dins'])} unit(s){pack} received into local stock; {received.local_units.count()} in all."

    return _run_action(request, act)


@login_required
@require_POST
def next_pack(request: HttpRequest, request_id: str) -> HttpResponse:
    def act(hospital: Hospital) -> str:
        pack = request_services.request_next_pack(blood_request_id=request_id, hospital=hospital, user=request.user)
        return f"MTP pack {pack.number} asked for; the bank has been told."

    return _run_action(request, act)


@login_required
@require_POST
def stop_mtp(request: HttpRequest, request_id: str) -> HttpResponse:
    def act(hospital: Hospital) -> str:
        request_services.stop_mtp(blood_request_id=request_id, hospital=hospital, user=request.user)
        return "MTP stopped; the bank releases the units it has not sent."

    return _run_action(request, act)


@login_required
@require_POST
def transfuse_unit(request: HttpRequest, unit_id: str) -> HttpResponse:
    data = {"patient_reference": request.POST.get("patient_reference", "").strip(), "started_at": timezone.now()}

    def act(hospital: Hospital) -> str:
        LocalUnit.objects.get(id=unit_id, hospital=hospital)  # another hospital's: 404 whatever was posted
        fields = _validated(TransfuseSerializer, data)
        unit = unit_services.transfuse_unit(unit_id=unit_id, hospital=hospital, user=request.user, **fields)
        return f"Unit {unit.din} recorded as transfused to {unit.patient_reference}."

    return _run_action(request, act)


@login_required
@require_POST
def discard_unit(request: HttpRequest, unit_id: str) -> HttpResponse:
    data = {"reason": request.POST.get("reason", ""), "note": request.POST.get("note", "").strip()[:500]}

    def act(hospital: Hospital) -> str:
        LocalUnit.objects.get(id=unit_id, hospital=hospital)  # another hospital's: 404 whatever was posted
        if not data["reason"]:
            raise DashboardInputError("give a reason to discard a unit")
        unit = unit_services.discard_unit(
            unit_id=unit_id, hospital=hospital, user=request.user, **_validated(DiscardSerializer, data)
        )
        return f"Unit {unit.din} recorded as wasted."

    return _run_action(request, act)


RETURN_MINUTES_MAX = 7 * 24 * 60


@login_required
@require_POST
def return_unit(request: HttpRequest, unit_id: str) -> HttpResponse:
    """Return a unit to the bank: the nurse says how long it has been out of the fridge and whether the cold
    chain held; it left storage that many minutes ago and is returned now. The bank decides what becomes of it."""
    minutes = request.POST.get("minutes_out", "").strip()
    intact = request.POST.get("cold_chain_intact", "") == "true"

    def act(hospital: Hospital) -> str:
        LocalUnit.objects.get(id=unit_id, hospital=hospital)  # another hospital's: 404 whatever was posted
        if not minutes.isdigit() or int(minutes) > RETURN_MINUTES_MAX:
            raise DashboardInputError(f"give the minutes out of the fridge, a whole number up to {RETURN_MINUTES_MAX}")
        now = timezone.now()
        data = {
            "left_storage_at": now - timedelta(minutes=int(minutes)),
            "returned_at": now,
            "cold_chain_intact": intact,
        }
        unit = unit_services.return_unit(
            unit_id=unit_id, hospital=hospital, user=request.user, **_validated(ReturnSerializer, data)
        )
        return f"Unit {unit.din} returned to the bank, which decides whether it goes back to stock."

    return _run_action(request, act)
