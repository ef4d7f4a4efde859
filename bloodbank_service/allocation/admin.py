"""Django admin: the bank's requests with their decisions and allocations, read-only."""

from __future__ import annotations

from django.contrib import admin, messages

from allocation.models import Allocation, BankRequest


class AllocationInline(admin.TabularInline):
    model = Allocation
    fields = ["unit", "unit_din", "unit_group", "allocated_at", "released_at", "release_reason"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description="DIN")
    def unit_din(self, allocation: Allocation) -> str:
        return allocation.unit.din

    @admin.display(description="group")
    def unit_group(self, allocation: Allocation) -> str:
        return allocation.unit.blood_group

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("unit")


@admin.register(BankRequest)
class BankRequestAdmin(admin.ModelAdmin):
    list_display = [
        "request_id",
        "hospital_name",
        "priority",
        "component",
        "blood_group",
        "units_requested",
        "units_allocated",
        "status",
        "reason_code",
        "received_at",
        "cancelled_at",
    ]
    list_filter = ["status", "priority", "component", "blood_group", "reason_code"]
    search_fields = ["request_id", "hospital_name", "allocations__unit__din"]
    date_hierarchy = "received_at"
    inlines = [AllocationInline]
    exclude = ["decision_event"]
    actions = ["dispatch_selected"]

    @admin.action(description="Dispatch the allocated units of the selected requests")
    def dispatch_selected(self, request, queryset) -> None:
        from traceability.services import NothingToDispatch, dispatch_request

        for bank_request in queryset.order_by("request_id"):
            try:
                dispatch = dispatch_request(request_id=bank_request.request_id, by=request.user.get_username())
            except NothingToDispatch as exc:
                self.message_user(request, str(exc), messages.WARNING)
            else:
                self.message_user(
                    request,
                    f"{dispatch.units.count()} unit(s) of {bank_request.request_id} dispatched",
                    messages.SUCCESS,
                )

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in BankRequest._meta.fields if field.name != "decision_event"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("decision_event")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
