from django.apps import AppConfig


class BloodRequestsConfig(AppConfig):
    name = "blood_requests"
    default_auto_field = "django.db.models.BigAutoField"
