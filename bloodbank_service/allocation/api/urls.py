from rest_framework.routers import SimpleRouter

from allocation.api import views

router = SimpleRouter()
router.register("requests", views.BankRequestViewSet, basename="bank-request")

urlpatterns = router.urls
