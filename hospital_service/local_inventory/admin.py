from django.contrib import admin

from local_inventory.models import LocalUnit


@admin.register(LocalUnit)
class LocalUnitAdmin(admin.ModelAdmin):
    list_display = ["din", "component", "blood_group", "status", "expires_at", "hospital"]
    list_filter = ["hospital", "status", "component", "blood_group"]
    search_fields = ["din"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
