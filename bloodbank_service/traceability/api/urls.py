from django.urls import path
from rest_framework.routers import SimpleRouter

from traceability.api import views

router = SimpleRouter()
router.register("recalls", views.RecallViewSet, basename="recall")

urlpatterns = [
    path("requests/<uuid:request_id>/dispatch/", views.DispatchView.as_view(), name="request-dispatch"),
    path("units/<str:din>/trace/", views.TraceView.as_view(), name="unit-trace"),
    path("units/<str:din>/fhir/", views.FhirView.as_view(), name="unit-fhir"),
    *router.urls,
]
