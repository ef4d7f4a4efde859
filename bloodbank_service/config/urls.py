"""bloodbank_service URLs: shared health/auth/schema routes, the REST API, Django admin."""

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Blood bank administration"
admin.site.site_title = "Blood bank"

urlpatterns = [
    path("", include("shared_events.django.urls")),
    path("api/v1/", include("inventory.api.urls")),
    path("api/v1/", include("allocation.api.urls")),
    path("api/v1/", include("traceability.api.urls")),
    path("admin/", admin.site.urls),
    # Session login/logout for the browsable API (DRF's pages). No password reset or change pages:
    # no mail is set up, they would be open to anyone, and accounts are managed in /admin/.
    path("accounts/", include("rest_framework.urls")),
]

handler404 = "shared_events.django.errors.not_found"  # JSON 404 for unknown /api/ paths
