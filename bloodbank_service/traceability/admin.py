"""Django admin: dispatches, fates and recalls, read-only (traceability records are never edited)."""

from __future__ import annotations

from django.contrib import admin

from traceability.models import Dispatch, Recall, RecallUnit, UnitFate


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Dispatch)
class DispatchAdmin(ReadOnlyAdmin):
    list_display = ["request", "dispatched_at", "dispatched_by", "courier", "received_at", "received_by"]
    search_fields = ["request__request_id", "units__din"]
    date_hierarchy = "dispatched_at"


@admin.register(UnitFate)
class UnitFateAdmin(ReadOnlyAdmin):
    list_display = ["unit", "fate", "hospital_id", "recorded_by", "recorded_at", "adverse_reaction", "bank_decision"]
    list_filter = ["fate", "adverse_reaction", "waste_reason"]
    search_fields = ["unit__din", "request__request_id"]


class RecallUnitInline(admin.TabularInline):
    model = RecallUnit
    fields = ["unit", "bank_status", "hospital_id", "outcome", "answered_at", "patient_reference", "started_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Recall)
class RecallAdmin(ReadOnlyAdmin):
    list_display = ["id", "reason", "severity", "status", "issued_by", "issued_at", "closed_at"]
    list_filter = ["status", "reason", "severity"]
    inlines = [RecallUnitInline]
