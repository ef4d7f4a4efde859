"""notification_service URLs: shared ops/auth/schema routes at the root, the notifications API under api/v1/."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("", include("shared_events.django.urls")),
    path("api/v1/", include("notifications.api.urls")),
    path("admin/", admin.site.urls),
    # Session login (same-origin EventSource on the live feed, browsable API).
    path("accounts/login/", auth_views.LoginView.as_view(template_name="rest_framework/login.html"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]

handler404 = "shared_events.django.errors.not_found"  # JSON 404 for unknown /api/ paths
