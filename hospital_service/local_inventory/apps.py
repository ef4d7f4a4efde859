from django.apps import AppConfig


class LocalInventoryConfig(AppConfig):
    name = "local_inventory"
    default_auto_field = "django.db.models.BigAutoField"
