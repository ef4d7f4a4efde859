from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.dashboard, name="home"),
    path("state/", views.state, name="state"),
    path("requests/", views.create_request, name="create-request"),
    path("requests/<uuid:request_id>/cancel/", views.cancel_request, name="cancel-request"),
    path("requests/<uuid:request_id>/receive/", views.receive_request, name="receive-request"),
    path("requests/<uuid:request_id>/next-pack/", views.next_pack, name="next-pack"),
    path("requests/<uuid:request_id>/stop-mtp/", views.stop_mtp, name="stop-mtp"),
    path("units/<uuid:unit_id>/transfuse/", views.transfuse_unit, name="transfuse-unit"),
    path("units/<uuid:unit_id>/discard/", views.discard_unit, name="discard-unit"),
    path("units/<uuid:unit_id>/return/", views.return_unit, name="return-unit"),
]
