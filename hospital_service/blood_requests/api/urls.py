from rest_framework.routers import SimpleRouter

from blood_requests.api.views import BloodRequestViewSet

router = SimpleRouter()
router.register("blood-requests", BloodRequestViewSet, basename="blood-request")

urlpatterns = router.urls
