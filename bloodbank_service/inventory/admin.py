"""Django admin for bank admins: units, thresholds, the stock picture."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from allocation.models import Allocation
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from inventory import selectors, services
from inventory.din import InvalidDIN, normalize_din
from inventory.models import (
    ANTIGEN_CHOICES,
    ATTRIBUTE_CHOICES,
    COMPONENT_CHOICES,
    ProductDescription,
    StockOverview,
    StockThreshold,
    Unit,
    UnitStatus,
    UnitStatusChange,
)
from inventory.receipt import ReceiptError, check_receipt, suggested_expiry
from shared_events.enums import BankDiscardReason, BloodGroup, Component, RecallReason, RecallSeverity, choices


class ReasonActionForm(ActionForm):
    reason = forms.CharField(required=False, label="Reason / note", widget=forms.TextInput(attrs={"size": 40}))
    discard_reason = forms.ChoiceField(
        required=False, label="Discard reason", choices=[("", "---------"), *choices(BankDiscardReason)]
    )
    recall_reason = forms.ChoiceField(
        required=False, label="Recall reason", choices=[("", "---------"), *choices(RecallReason)]
    )
    recall_severity = forms.ChoiceField(
        required=False, label="Recall severity", choices=[("", "---------"), *choices(RecallSeverity)]
    )


class ExpiryFilter(admin.SimpleListFilter):
    title = "expiry"
    parameter_name = "expiry"

    def lookups(self, request, model_admin):
        return [
            ("expired", "Past expiry"),
            ("72h", "Within 72 hours"),
            ("7d", "Within 7 days"),
            ("later", "Later than 7 days"),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        match self.value():
            case "expired":
                return queryset.filter(expires_at__lte=now)
            case "72h":
                return queryset.filter(expires_at__gt=now, expires_at__lte=now + timedelta(hours=72))
            case "7d":
                return queryset.filter(expires_at__gt=now, expires_at__lte=now + timedelta(days=7))
            case "later":
                return queryset.filter(expires_at__gt=now + timedelta(days=7))
        return queryset


class FateOverdueFilter(admin.SimpleListFilter):
    """Units issued longer than ``FATE_OVERDUE_HOURS`` ago whose hospital has not reported a fate yet."""

    title = "fate overdue"
    parameter_name = "fate_overdue"

    def lookups(self, request, model_admin):
        return [("yes", "Issued, no fate after FATE_OVERDUE_HOURS")]

    def queryset(self, request, queryset):
        if self.value() != "yes":
            return queryset
        from traceability.selectors import overdue_unit_ids  # traceability builds on this app

        return queryset.filter(pk__in=overdue_unit_ids())


class _HeldInListFilter(admin.SimpleListFilter):
    """Units whose JSON list ``field`` holds the chosen code."""

    field: str
    codes: list[tuple[str, str]]

    def lookups(self, request, model_admin):
        return self.codes

    def queryset(self, request, queryset):
        return queryset.filter(**{f"{self.field}__contains": [self.value()]}) if self.value() else queryset


class SpecialAttributeFilter(_HeldInListFilter):
    title = "special attribute"
    parameter_name = "attribute"
    field = "special_attributes"
    codes = ATTRIBUTE_CHOICES


class AntigenNegativeFilter(_HeldInListFilter):
    title = "antigen negative"
    parameter_name = "antigen_negative"
    field = "antigen_negative"
    codes = ANTIGEN_CHOICES


class StatusHistoryInline(admin.TabularInline):
    """The unit's trace, vein to vein: each step in time order with who, the request and what was recorded."""

    model = UnitStatusChange
    fields = ["at", "trace_step", "from_status", "to_status", "by", "request_id", "reason", "detail"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "trace (status history)"

    @admin.display(description="step")
    def trace_step(self, change: UnitStatusChange) -> str:
        from inventory.lifecycle import step_of

        return step_of(from_status=change.from_status, to_status=change.to_status, recorded_step=change.step).value

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class UnitAllocationInline(admin.TabularInline):
    model = Allocation
    fields = ["request", "allocated_at", "released_at", "release_reason"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


RECEIPT_FIELDS = (
    "din",
    "product_code",
    "component",
    "blood_group",
    "volume_ml",
    "collected_at",
    "expires_at",
    "batch",
    "special_attributes",
    "antigen_negative",
    "irradiated_at",
)


class ReceiveUnitForm(forms.ModelForm):
    """Receive a unit: the rules are ``inventory.receipt.check_receipt``'s, shown as this form's errors.

    Without an expiry the form answers with the product's default shelf life filled in, to check
    against the label and confirm: a default only ever pre-fills.
    """

    class Meta:
        model = Unit
        fields = list(RECEIPT_FIELDS)

    din = forms.CharField(max_length=14, help_text="13 characters, or 14 with the check character")
    product_code = forms.CharField(
        max_length=16,
        required=False,
        help_text="ISBT 128 product code, e.g. E0398V00 (PDC, type of donation, division); "
        "empty: the component's default code, division 00",
    )
    component = forms.ChoiceField(
        choices=[("", "---------"), *COMPONENT_CHOICES],
        required=False,
        help_text="only needed without a product code; otherwise it must agree with it",
    )
    expires_at = forms.DateTimeField(
        required=False,
        help_text="from the label; left empty, the form suggests the product's default shelf life to confirm",
    )
    special_attributes = forms.MultipleChoiceField(
        choices=ATTRIBUTE_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="from test results; the product's own attributes are added from its code",
    )
    antigen_negative = forms.MultipleChoiceField(
        choices=ANTIGEN_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )
    irradiated_at = forms.DateTimeField(required=False, help_text="required for irradiated red cells")

    def clean_din(self) -> str:
        try:
            return normalize_din(self.cleaned_data["din"])
        except InvalidDIN as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean(self):
        data = super().clean()
        needed = ("din", "blood_group", "volume_ml", "collected_at", "batch")
        if any(name not in data for name in needed):
            return data  # those fields have their own errors already
        if data.get("expires_at") is None:
            suggestion = suggested_expiry(
                product_code=data.get("product_code", ""),
                component=data.get("component", ""),
                collected_at=data["collected_at"],
            )
            if suggestion is not None:
                self.data = self.data.copy()
                self.data["expires_at"] = suggestion.strftime("%Y-%m-%d %H:%M:%S")
                self.add_error(
                    "expires_at",
                    "Filled in from the product's default shelf life: check it against the label, then save again.",
                )
                return data
        try:
            receipt = check_receipt(**{name: data.get(name) for name in RECEIPT_FIELDS} | _blanks(data))
        except ReceiptError as exc:
            for name, problems in exc.errors.items():
                for problem in problems:
                    self.add_error(name if name in self.fields else None, problem)
            return data
        data["receipt"] = receipt
        # The model's own checks (run by the form after this) see the unit as it will be recorded.
        data.update(product_code=receipt.product_code, component=receipt.component)
        self.instance.division = receipt.division
        return data


def _blanks(data: dict) -> dict:
    return {
        "product_code": data.get("product_code") or "",
        "component": data.get("component") or "",
        "special_attributes": data.get("special_attributes") or [],
        "antigen_negative": data.get("antigen_negative") or [],
    }


@admin.register(Unit)
class UnitAdmin(admin.ModelAdmin):
    list_display = [
        "din",
        "product_code",
        "division",
        "component",
        "blood_group",
        "status",
        "expires_at",
        "attributes",
        "batch",
        "volume_ml",
    ]
    list_filter = [
        "status",
        "component",
        "blood_group",
        SpecialAttributeFilter,
        AntigenNegativeFilter,
        "division",
        ExpiryFilter,
        FateOverdueFilter,
    ]  # batches: search box
    search_fields = ["din", "batch", "product_code"]
    ordering = ["expires_at", "din"]
    date_hierarchy = "expires_at"
    list_per_page = 100
    action_form = ReasonActionForm
    actions = ["quarantine_units", "release_units", "discard_units", "irradiate_units", "recall_donations"]
    inlines = [UnitAllocationInline, StatusHistoryInline]
    readonly_fields = [
        "id",
        "din",
        "product_code",
        "division",
        "component",
        "blood_group",
        "volume_ml",
        "collected_at",
        "expires_at",
        "batch",
        "special_attributes",
        "antigen_negative",
        "irradiated_at",
        "status",
        "recalled_at",
        "received_at",
        "updated_at",
        "trace_links",
    ]

    @admin.display(description="trace")
    def trace_links(self, unit: Unit) -> str:
        return format_html(
            '<a href="{}">whole trace of DIN {} (JSON)</a> · <a href="{}">FHIR R5 bundle</a>',
            reverse("unit-trace", kwargs={"din": unit.din}),
            unit.din,
            reverse("unit-fhir", kwargs={"din": unit.din}),
        )

    @admin.display(description="attributes")
    def attributes(self, unit: Unit) -> str:
        negative = [f"{antigen}-neg" for antigen in unit.antigen_negative]
        return ", ".join([*unit.special_attributes, *negative]) or "-"

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ReceiveUnitForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def get_search_results(self, request, queryset, search_term):
        # A scanned DIN carries its check character: search by the 13-character DIN.
        term = search_term.strip()
        if len(term) == 14:
            with contextlib.suppress(InvalidDIN):
                term = normalize_din(term)
        return super().get_search_results(request, queryset, term)

    def save_model(self, request, obj, form, change) -> None:
        if change:  # units change status only through the actions (history and stock events)
            return
        receipt = form.cleaned_data["receipt"]
        try:
            unit = services.receive_unit(
                **{name: getattr(receipt, name) for name in RECEIPT_FIELDS},
                expiry_required=True,
                by=request.user.get_username(),
            )
        except ReceiptError as exc:  # received by someone else meanwhile
            self.message_user(request, f"Nothing recorded: {exc}", messages.ERROR)
            return
        obj.pk = unit.pk
        obj.refresh_from_db()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # nothing clinical is deleted; discard instead

    def _change(self, request, queryset, to: UnitStatus, verb: str) -> None:
        reason = (request.POST.get("reason") or "").strip()
        if not reason:
            self.message_user(request, f"Give a reason to {verb} units.", messages.ERROR)
            return
        try:
            units = services.change_status(
                unit_ids=list(queryset.values_list("pk", flat=True)),
                to=to,
                reason=reason,
                by=request.user.get_username(),
            )
        except services.TransitionError as exc:
            self.message_user(request, f"Nothing changed: {exc}", messages.ERROR)
            return
        for unit in units:
            self.log_change(request, unit, f"{verb}: {reason} (now {unit.status})")
        self.message_user(request, f"{len(units)} unit(s): {verb} ({reason}).", messages.SUCCESS)

    @admin.action(description="Quarantine selected units (give a reason)")
    def quarantine_units(self, request, queryset) -> None:
        self._change(request, queryset, UnitStatus.QUARANTINED, "quarantine")

    @admin.action(description="Release selected units from quarantine (give a reason)")
    def release_units(self, request, queryset) -> None:
        self._change(request, queryset, UnitStatus.AVAILABLE, "release")

    @admin.action(description="Discard selected units (choose a discard reason; a note for OTHER)")
    def discard_units(self, request, queryset) -> None:
        code = request.POST.get("discard_reason") or ""
        note = (request.POST.get("reason") or "").strip()
        try:
            units = services.discard_units(
                unit_ids=list(queryset.values_list("pk", flat=True)),
                reason=code,
                note=note,
                by=request.user.get_username(),
            )
        except services.DiscardReasonError as exc:
            problems = "; ".join(f"{name}: {' '.join(text)}" for name, text in exc.errors.items())
            self.message_user(request, f"Nothing discarded: {problems}", messages.ERROR)
            return
        except services.TransitionError as exc:
            self.message_user(request, f"Nothing changed: {exc}", messages.ERROR)
            return
        for unit in units:
            self.log_change(request, unit, f"discard: {code} {note} (now {unit.status})".strip())
        self.message_user(request, f"{len(units)} unit(s) discarded ({code}).", messages.SUCCESS)

    @admin.action(description="Recall the donations (DINs) of the selected units: every component (give a reason)")
    def recall_donations(self, request, queryset) -> None:
        from traceability.api.serializers import RecallCreateSerializer  # traceability builds on this app
        from traceability.services import issue_recall

        dins = sorted(set(queryset.values_list("din", flat=True)))
        incoming = RecallCreateSerializer(
            data={
                "dins": dins,
                "reason": request.POST.get("recall_reason") or "",
                "severity": request.POST.get("recall_severity") or "",
                "note": (request.POST.get("reason") or "").strip(),
            }
        )
        if not incoming.is_valid():
            problems = "; ".join(f"{name}: {' '.join(map(str, text))}" for name, text in incoming.errors.items())
            self.message_user(request, f"Nothing recalled: {problems}", messages.ERROR)
            return
        recall = issue_recall(**incoming.validated_data, by=request.user.get_username())
        self.message_user(
            request,
            format_html(
                'Recall of {} donation(s) issued; hospitals holding its units are told. <a href="{}">Its status</a>',
                len(dins),
                reverse("admin:traceability_recall_change", args=[recall.pk]),
            ),
            messages.WARNING,
        )

    @admin.action(description="Record selected units as irradiated now (red cells: expiry shortened)")
    def irradiate_units(self, request, queryset) -> None:
        done = []
        for pk in queryset.values_list("pk", flat=True):
            try:
                unit = services.irradiate_unit(unit_id=pk, by=request.user.get_username())
            except (services.TransitionError, ReceiptError) as exc:
                self.message_user(request, f"Not irradiated: {exc}", messages.ERROR)
                continue
            self.log_change(request, unit, f"irradiated; expires {unit.expires_at:%Y-%m-%d %H:%M}")
            done.append(unit)
        if done:
            self.message_user(request, f"{len(done)} unit(s) recorded as irradiated.", messages.SUCCESS)


@admin.register(StockThreshold)
class StockThresholdAdmin(admin.ModelAdmin):
    list_display = [
        "component",
        "blood_group",
        "low_threshold",
        "critical_threshold",
        "low_days",
        "critical_days",
        "updated_at",
    ]
    list_editable = ["low_threshold", "critical_threshold", "low_days", "critical_days"]
    list_filter = ["component", "blood_group"]
    list_per_page = 100
    readonly_fields = ["component", "blood_group"]

    def save_model(self, request, obj, form, change) -> None:
        services.update_thresholds(
            items=[
                {
                    "component": obj.component,
                    "blood_group": obj.blood_group,
                    "low_threshold": obj.low_threshold,
                    "critical_threshold": obj.critical_threshold,
                    "low_days": obj.low_days,
                    "critical_days": obj.critical_days,
                }
            ],
            by=request.user.get_username(),
        )

    def has_add_permission(self, request) -> bool:
        return False  # every key exists (seed_demo, or created on first use)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ProductForm(forms.ModelForm):
    attributes = forms.MultipleChoiceField(
        choices=ATTRIBUTE_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="what every unit of this product has",
    )

    class Meta:
        model = ProductDescription
        fields = ["pdc", "component", "description", "attributes", "default_shelf_life", "component_default"]


@admin.register(ProductDescription)
class ProductDescriptionAdmin(admin.ModelAdmin):
    """The configured PDC table: component, implied attributes and default shelf life of each product."""

    form = ProductForm
    list_display = ["pdc", "component", "description", "implied_attributes", "default_shelf_life", "component_default"]
    list_filter = ["component", "component_default"]
    search_fields = ["pdc", "description"]

    @admin.display(description="attributes")
    def implied_attributes(self, product: ProductDescription) -> str:
        return ", ".join(product.attributes) or "-"

    def get_readonly_fields(self, request, obj=None):
        # A code on units keeps its meaning: the PDC and component of a product in use are fixed.
        if obj is not None and Unit.objects.filter(product_code__startswith=obj.pdc).exists():
            return ["pdc", "component"]
        return []

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # units name their product by its code


@admin.register(StockOverview)
class StockOverviewAdmin(admin.ModelAdmin):
    """One page: available/allocated/expiring units and level for every component and group."""

    def changelist_view(self, request, extra_context=None):
        rows = selectors.stock_overview()
        by_key = {(row["component"], row["blood_group"]): row for row in rows}
        grid = [
            {"component": component.value, "cells": [by_key[(component.value, group.value)] for group in BloodGroup]}
            for component in Component
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Stock picture",
            "opts": self.model._meta,
            "groups": [group.value for group in BloodGroup],
            "grid": grid,
            "totals": {
                "available": sum(row["available_units"] for row in rows),
                "allocated": sum(row["allocated_units"] for row in rows),
                "expiring": sum(row["expiring_within_72h"] for row in rows),
                "low": sum(row["level"] == "LOW" for row in rows),
                "irradiated": sum(row["by_attribute"]["IRRADIATED"] for row in rows),
                "cmv_negative": sum(row["by_attribute"]["CMV_NEGATIVE"] for row in rows),
                "critical": sum(row["level"] == "CRITICAL" for row in rows),
            },
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/inventory/stock_overview.html", context)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_staff
