"""hospital_service URLs: shared health/auth/schema routes, the v1 API, admin, login and dashboard."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", include("shared_events.django.urls")),
    path("api/v1/", include("blood_requests.api.urls")),
    path("api/v1/", include("local_inventory.api.urls")),
    path("api/v1/", include("bank_stock.api.urls")),
    path("api/v1/", include("recalls.api.urls")),
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="dashboard/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="/accounts/login/"), name="logout"),
    path("dashboard/", include("dashboard.urls")),
    path("", RedirectView.as_view(url="/dashboard/", permanent=False)),
]

handler404 = "shared_events.django.errors.not_found"  # JSON 404 for unknown /api/ paths
