from django.apps import AppConfig


class BankStockConfig(AppConfig):
    name = "bank_stock"
    default_auto_field = "django.db.models.BigAutoField"
