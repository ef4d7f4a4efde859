from django.apps import AppConfig


class HospitalsConfig(AppConfig):
    name = "hospitals"
    default_auto_field = "django.db.models.BigAutoField"
