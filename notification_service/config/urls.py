"""notification_service URLs: shared ops/auth/schema routes at the root, the notifications API under api/v1/."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("shared_events.django.urls")),
    path("api/v1/", include("notifications.api.urls")),
    path("admin/", admin.site.urls),
    # Session login/logout (same-origin EventSource on the live feed, browsable API): DRF's pages,
    # whose template needs DRF's URL namespace.
    path("accounts/", include("rest_framework.urls")),
]

handler404 = "shared_events.django.errors.not_found"  # JSON 404 for unknown /api/ paths
