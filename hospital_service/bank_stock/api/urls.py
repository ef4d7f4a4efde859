from django.urls import path

from bank_stock.api.views import BankStockView

urlpatterns = [path("bank-stock/", BankStockView.as_view(), name="bank-stock")]
