"""bloodbank_service URLs: shared health/auth/schema routes, the REST API, Django admin."""

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Blood bank administration"
admin.site.site_title = "Blood bank"

urlpatterns = [
    path("", include("shared_events.django.urls")),
    path("api/v1/", include("inventory.api.urls")),
    path("api/v1/", include("allocation.api.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
]

handler404 = "shared_events.django.errors.not_found"  # JSON 404 for unknown /api/ paths
