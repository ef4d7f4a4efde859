"""URLs every service shares: health, metrics, token login and logout, OpenAPI schema and Swagger UI."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from shared_events.django import views
from shared_events.django.auth import logout, logout_all, obtain_auth_token

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("api/v1/auth/token/", obtain_auth_token, name="auth-token"),
    path("api/v1/auth/logout/", logout, name="auth-logout"),
    path("api/v1/auth/logout-all/", logout_all, name="auth-logout-all"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]
