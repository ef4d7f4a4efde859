from django.contrib import admin

from recalls.models import HospitalRecall, HospitalRecallUnit


class RecallUnitInline(admin.TabularInline):
    model = HospitalRecallUnit
    fields = ["din", "component", "blood_group", "request_id", "state", "updated_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(HospitalRecall)
class HospitalRecallAdmin(admin.ModelAdmin):
    list_display = ["recall_id", "hospital", "reason", "severity", "issued_at", "last_acknowledged_at"]
    list_filter = ["reason", "severity", "hospital"]
    inlines = [RecallUnitInline]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
