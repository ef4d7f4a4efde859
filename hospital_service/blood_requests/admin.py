from django.contrib import admin

from blood_requests.models import BloodRequest, StatusChange


class StatusChangeInline(admin.TabularInline):
    model = StatusChange
    extra = 0
    can_delete = False
    readonly_fields = ["status", "at", "detail", "event_id"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # the audit trail is written by the services only


@admin.register(BloodRequest)
class BloodRequestAdmin(admin.ModelAdmin):
    list_display = ["id", "hospital", "priority", "units", "component", "blood_group", "status", "created_at"]
    list_filter = ["hospital", "status", "priority", "component", "blood_group"]
    inlines = [StatusChangeInline]

    def get_readonly_fields(self, request, obj=None):
        # Status changes go through the services (state machine + history), never the admin form.
        return [field.name for field in BloodRequest._meta.fields]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
