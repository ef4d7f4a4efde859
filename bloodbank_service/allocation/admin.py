"""Django admin: the bank's requests with their decisions and allocations, read-only."""

from __future__ import annotations

from django.contrib import admin, messages

from allocation.models import Allocation, BankRequest, MtpPack


class MtpPackInline(admin.TabularInline):
    """An MTP request's packs, each with its own decision (transfusion.md section 7)."""

    model = MtpPack
    fields = [
        "number",
        "status",
        "units_requested",
        "units_allocated",
        "reason_code",
        "detail",
        "requested_by",
        "requested_at",
        "decided_at",
        "decision_event_id",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "MTP packs"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).defer("decision_event")


class AllocationInline(admin.TabularInline):
    model = Allocation
    fields = [
        "unit",
        "unit_din",
        "unit_product",
        "unit_group",
        "unit_attributes",
        "pack",
        "allocated_at",
        "released_at",
        "release_reason",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description="DIN")
    def unit_din(self, allocation: Allocation) -> str:
        return allocation.unit.din

    @admin.display(description="product")
    def unit_product(self, allocation: Allocation) -> str:
        return f"{allocation.unit.product_code} / {allocation.unit.division}"

    @admin.display(description="group")
    def unit_group(self, allocation: Allocation) -> str:
        return allocation.unit.blood_group

    @admin.display(description="attributes")
    def unit_attributes(self, allocation: Allocation) -> str:
        return ", ".join(allocation.unit.special_attributes)

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
        "protocol",
        "component",
        "blood_group",
        "group_confirmed",
        "uncrossmatched",
        "units_requested",
        "units_allocated",
        "status",
        "reason_code",
        "received_at",
        "cancelled_at",
    ]
    list_filter = ["status", "priority", "protocol", "component", "blood_group", "group_confirmed", "reason_code"]
    search_fields = ["request_id", "hospital_name", "allocations__unit__din"]
    date_hierarchy = "received_at"
    inlines = [MtpPackInline, AllocationInline]
    exclude = ["decision_event"]
    actions = ["dispatch_selected"]

    @admin.action(description="Dispatch the allocated units of the selected requests (MTP: the oldest pack)")
    def dispatch_selected(self, request, queryset) -> None:
        from traceability.services import NothingToDispatch, dispatch_request

        for bank_request in queryset.order_by("request_id"):
            try:
                dispatch = dispatch_request(request_id=bank_request.request_id, by=request.user.get_username())
            except NothingToDispatch as exc:
                self.message_user(request, str(exc), messages.WARNING)
            else:
                of_pack = f" (MTP pack {dispatch.pack})" if dispatch.pack is not None else ""
                self.message_user(
                    request,
                    f"{dispatch.units.count()} unit(s) of {bank_request.request_id}{of_pack} dispatched",
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
