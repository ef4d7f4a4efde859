from django.contrib import admin

from hospitals.models import Hospital, StaffMembership


@admin.register(Hospital)
class HospitalAdmin(admin.ModelAdmin):
    list_display = ["name", "id"]


@admin.register(StaffMembership)
class StaffMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "hospital", "joined_at"]
    list_filter = ["hospital"]
