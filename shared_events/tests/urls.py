from django.urls import include, path

urlpatterns = [path("", include("shared_events.django.urls"))]
