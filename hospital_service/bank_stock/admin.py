from django.contrib import admin

from bank_stock.models import BankStock, StockAlert


@admin.register(BankStock)
class BankStockAdmin(admin.ModelAdmin):
    list_display = ["component", "blood_group", "available_units", "level", "as_of"]
    list_filter = ["level", "component"]


@admin.register(StockAlert)
class StockAlertAdmin(admin.ModelAdmin):
    list_display = ["component", "blood_group", "level", "available_units", "as_of"]
    list_filter = ["level", "component"]
