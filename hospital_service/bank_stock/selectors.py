"""Reads of the bank-stock read model."""

from __future__ import annotations

from django.db.models import QuerySet

from bank_stock.models import BankStock, StockAlert


def bank_stock() -> QuerySet[BankStock]:
    """Every component and group the bank has reported, in a stable order."""
    return BankStock.objects.all()


def recent_stock_alerts(*, limit: int = 10) -> list[StockAlert]:
    return list(StockAlert.objects.all()[:limit])
