"""Django admin for bank admins: units, thresholds, the stock picture."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from allocation.models import Allocation
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.template.response import TemplateResponse
from django.utils import timezone

from inventory import rules, selectors, services
from inventory.din import InvalidDIN, normalize_din
from inventory.models import StockOverview, StockThreshold, Unit, UnitStatus, UnitStatusChange
from shared_events.enums import BloodGroup, Component


class ReasonActionForm(ActionForm):
    reason = forms.CharField(required=False, label="Reason", widget=forms.TextInput(attrs={"size": 40}))


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


class StatusHistoryInline(admin.TabularInline):
    model = UnitStatusChange
    fields = ["at", "from_status", "to_status", "by", "reason", "request_id"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "status history"

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


class ReceiveUnitForm(forms.ModelForm):
    class Meta:
        model = Unit
        fields = ["din", "component", "blood_group", "volume_ml", "collected_at", "expires_at", "batch"]

    din = forms.CharField(max_length=14, help_text="13 characters, or 14 with the check character")
    expires_at = forms.DateTimeField(required=False, help_text="empty: the component's default shelf life")

    def clean_din(self) -> str:
        try:
            return normalize_din(self.cleaned_data["din"])
        except InvalidDIN as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean(self):
        data = super().clean()
        if data.get("expires_at") and data.get("collected_at") and data["expires_at"] <= data["collected_at"]:
            self.add_error("expires_at", "must be after collected_at")
        elif data.get("expires_at") and data.get("collected_at") and data.get("component"):
            problem = rules.expiry_problem(
                data["component"], collected_at=data["collected_at"], expires_at=data["expires_at"], now=timezone.now()
            )
            if problem:
                self.add_error("expires_at", problem)
        return data


@admin.register(Unit)
class UnitAdmin(admin.ModelAdmin):
    list_display = ["din", "component", "blood_group", "status", "expires_at", "batch", "volume_ml"]
    list_filter = ["status", "component", "blood_group", ExpiryFilter]  # batches: search box
    search_fields = ["din", "batch"]
    ordering = ["expires_at", "din"]
    date_hierarchy = "expires_at"
    list_per_page = 100
    action_form = ReasonActionForm
    actions = ["quarantine_units", "release_units", "discard_units"]
    inlines = [UnitAllocationInline, StatusHistoryInline]
    readonly_fields = [
        "id",
        "din",
        "component",
        "blood_group",
        "volume_ml",
        "collected_at",
        "expires_at",
        "batch",
        "status",
        "received_at",
        "updated_at",
    ]

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
        unit = services.receive_unit(**form.cleaned_data, by=request.user.get_username())
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

    @admin.action(description="Discard selected units (give a reason)")
    def discard_units(self, request, queryset) -> None:
        self._change(request, queryset, UnitStatus.DISCARDED, "discard")


@admin.register(StockThreshold)
class StockThresholdAdmin(admin.ModelAdmin):
    list_display = ["component", "blood_group", "low_threshold", "critical_threshold", "updated_at"]
    list_editable = ["low_threshold", "critical_threshold"]
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
                }
            ],
            by=request.user.get_username(),
        )

    def has_add_permission(self, request) -> bool:
        return False  # every key exists (seed_demo, or created on first use)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


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
