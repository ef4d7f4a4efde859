from django.urls import path
from rest_framework.routers import SimpleRouter

from local_inventory.api.views import LocalSummaryView, LocalUnitViewSet

router = SimpleRouter()
router.register("inventory/units", LocalUnitViewSet, basename="local-unit")

urlpatterns = [
    path("inventory/summary/", LocalSummaryView.as_view(), name="local-summary"),
    *router.urls,
]
