from django.contrib import admin

from blood_requests.models import BloodRequest, MtpPack, StatusChange


class StatusChangeInline(admin.TabularInline):
    model = StatusChange
    extra = 0
    can_delete = False
    readonly_fields = ["status", "at", "detail", "event_id"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # the audit trail is written by the services only


class MtpPackInline(admin.TabularInline):
    model = MtpPack
    extra = 0
    can_delete = False
    fields = ["number", "status", "units_requested", "units_allocated", "uncrossmatched", "decided_at", "received_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # packs are asked for through the API (next-pack), never the admin


@admin.register(BloodRequest)
class BloodRequestAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "hospital",
        "protocol",
        "priority",
        "units",
        "component",
        "blood_group",
        "uncrossmatched",
        "status",
        "created_at",
    ]
    list_filter = ["hospital", "status", "protocol", "priority", "component", "blood_group", "uncrossmatched"]
    inlines = [StatusChangeInline, MtpPackInline]

    def get_readonly_fields(self, request, obj=None):
        # Status changes go through the services (state machine + history), never the admin form.
        return [field.name for field in BloodRequest._meta.fields]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
