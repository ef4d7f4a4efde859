from rest_framework.routers import SimpleRouter

from recalls.api.views import RecallViewSet

router = SimpleRouter()
router.register("recalls", RecallViewSet, basename="recall")

urlpatterns = router.urls
