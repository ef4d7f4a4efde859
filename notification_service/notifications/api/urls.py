from django.urls import path
from rest_framework.routers import SimpleRouter

from notifications.api.stream import notification_stream
from notifications.api.views import NotificationViewSet

router = SimpleRouter()
router.register("notifications", NotificationViewSet, basename="notification")

urlpatterns = [
    # Before the router so "stream" is never read as a notification id.
    path("notifications/stream/", notification_stream, name="notification-stream"),
    *router.urls,
]
