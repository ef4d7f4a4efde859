from django.urls import path
from rest_framework.routers import SimpleRouter

from inventory.api import views

router = SimpleRouter()
router.register("units", views.UnitViewSet, basename="unit")

urlpatterns = [
    *router.urls,
    path("stock/", views.StockView.as_view(), name="stock"),
    path("thresholds/", views.ThresholdsView.as_view(), name="thresholds"),
    path("products/", views.ProductsView.as_view(), name="products"),
]
