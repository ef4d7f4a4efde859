from rest_framework.routers import DefaultRouter

from blood_requests.api.views import BloodRequestViewSet

router = DefaultRouter()
router.register("blood-requests", BloodRequestViewSet, basename="blood-request")

urlpatterns = router.urls
