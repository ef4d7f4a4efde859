"""Django admin: dispatches, fates and recalls, read-only (traceability records are never edited)."""

from __future__ import annotations

from django.contrib import admin, messages

from traceability import rules, selectors, services
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
    """Per recalled unit: where it was, what is known of it, and whether that accounts for it."""

    model = RecallUnit
    fields = [
        "unit",
        "bank_status",
        "hospital_id",
        "outcome",
        "accounted",
        "answered_at",
        "patient_reference",
        "started_at",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(boolean=True)
    def accounted(self, entry: RecallUnit) -> bool:
        return entry.outcome in rules.ACCOUNTED


@admin.register(Recall)
class RecallAdmin(ReadOnlyAdmin):
    """The recall status page: per unit and hospital what is known, until every unit is accounted for.

    Recalls are issued from the units list (action "Recall the donations"), or ``POST /api/v1/recalls/``.
    """

    list_display = ["id", "reason", "severity", "status", "accounted", "issued_by", "issued_at", "closed_at"]
    list_filter = ["status", "reason", "severity"]
    inlines = [RecallUnitInline]
    actions = ["close_recalls"]

    def get_queryset(self, request):
        return selectors.recalls()

    @admin.display(description="accounted for")
    def accounted(self, recall: Recall) -> str:
        summary = selectors.recall_summary(recall)
        return f"{summary['accounted']} of {summary['units']}"

    @admin.action(description="Close the selected recalls (only once every unit is accounted for)")
    def close_recalls(self, request, queryset) -> None:
        for recall in queryset:
            try:
                services.close_recall(recall_id=recall.pk, by=request.user.get_username())
            except services.RecallNotAccounted as exc:
                self.message_user(request, f"Recall {str(recall.pk)[:8]} stays open: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"Recall {str(recall.pk)[:8]} closed.", messages.SUCCESS)
