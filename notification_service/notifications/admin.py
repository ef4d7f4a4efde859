from django.contrib import admin

from notifications.models import KnownHospital, KnownRequest, Notification, Recipient


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "audience", "kind", "severity", "title", "read_at", "escalated_at")
    list_filter = ("kind", "severity", "audience")
    search_fields = ("title", "body", "request_id", "source_event_id")
    readonly_fields = [f.name for f in Notification._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # notifications come from events only

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # records are kept


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    list_display = ("user", "audience")
    search_fields = ("user__username", "audience")


@admin.register(KnownHospital)
class KnownHospitalAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "first_seen_at")


@admin.register(KnownRequest)
class KnownRequestAdmin(admin.ModelAdmin):
    list_display = ("request_id", "hospital_name", "units", "blood_group", "component", "priority", "requested_at")
