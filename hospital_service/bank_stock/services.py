"""Keep the bank-stock read model from ``bloodbank.inventory.updated`` and ``low_stock`` events.

Events of one key arrive in order (keyed by ``component:blood_group``), but a re-delivery
or replay may bring an older count: a row only moves forward in ``as_of``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any
from uuid import UUID

from django.db import connections, transaction
from django.utils import timezone

from bank_stock.models import BankStock, StockAlert
from shared_events.django.prepared import execute
from shared_events.enums import StockCrossing, StockLevel
from shared_events.schemas import InventoryUpdatedV1, LowStockV1


def _days(value: float | None) -> Decimal | None:
    """Days of supply to one decimal, as the bank computes it; None stays None (nothing issued, or an older bank)."""
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def apply_inventory_update(*, data: InventoryUpdatedV1) -> None:
    """Store the bank's new count for one component and group, unless we already hold a newer one.

    One UPDATE in the usual case (the row exists and is older); only a new key, or an
    event older than the row, takes the locked read.
    """
    key = {"component": data.component.value, "blood_group": data.blood_group.value}
    counts = {
        "available_units": data.available_units,
        "expiring_within_72h": data.expiring_within_72h,
        "level": data.level.value,
        "days_of_supply": _days(data.days_of_supply),  # null when the bank sent none: nothing issued
        "as_of": data.as_of,
    }
    with transaction.atomic(savepoint=False):  # joins the consumer's transaction; a failure undoes it all
        if _update_if_not_newer(key, counts):
            return
        stock, created = BankStock.objects.select_for_update().get_or_create(**key, defaults=counts)
        if not created and data.as_of >= stock.as_of:  # created meanwhile by a concurrent writer
            for name, value in counts.items():
                setattr(stock, name, value)
            stock.save()


_KEY = ("component", "blood_group")
_COUNTS = ("available_units", "expiring_within_72h", "level", "days_of_supply", "as_of", "updated_at")


def _update_if_not_newer(key: dict[str, Any], counts: dict[str, Any]) -> int:
    """``BankStock.objects.filter(**key, as_of__lte=as_of).update(**counts, updated_at=now)``, its SQL built once.

    The ORM spent more CPU composing this UPDATE than PostgreSQL takes to run it,
    on the one statement every ``inventory.updated`` event runs. Returns the rows updated.
    """
    connection = connections["default"]
    values = {**counts, "updated_at": timezone.now()}
    fields = [BankStock._meta.get_field(name) for name in (*_COUNTS, *_KEY, "as_of")]
    given = [values[name] for name in _COUNTS] + [key[name] for name in _KEY] + [counts["as_of"]]
    params = [field.get_db_prep_save(value, connection) for field, value in zip(fields, given, strict=True)]
    with connection.cursor() as cursor:
        execute(cursor, _update_sql(connection.vendor), params)  # on PostgreSQL also prepared on the server
        return cursor.rowcount


@cache
def _update_sql(vendor: str) -> str:
    quote = connections["default"].ops.quote_name
    meta = BankStock._meta
    column = {name: quote(meta.get_field(name).column) for name in (*_COUNTS, *_KEY)}
    assignments = ", ".join(f"{column[name]} = %s" for name in _COUNTS)
    conditions = " AND ".join(f"{column[name]} = %s" for name in _KEY)
    # Identifiers come from the model; every value is a parameter.
    return (
        f"UPDATE {quote(meta.db_table)} SET {assignments} "  # noqa: S608
        f"WHERE {conditions} AND {column['as_of']} <= %s"
    )


def record_stock_crossing(*, data: LowStockV1, event_id: UUID) -> StockAlert:
    """Keep the alert, and move the stock row to the crossed level if the alert is newer."""
    level = StockLevel.OK if data.level == StockCrossing.RECOVERED else StockLevel(data.level.value)
    with transaction.atomic(savepoint=False):  # joins the consumer's transaction; a failure undoes it all
        alert, _ = StockAlert.objects.get_or_create(
            event_id=event_id,
            defaults={
                "component": data.component.value,
                "blood_group": data.blood_group.value,
                "level": data.level.value,
                "available_units": data.available_units,
                "low_threshold": data.low_threshold,
                "critical_threshold": data.critical_threshold,
                "as_of": data.as_of,
            },
        )
        stock, created = BankStock.objects.select_for_update().get_or_create(
            component=data.component.value,
            blood_group=data.blood_group.value,
            defaults={"available_units": data.available_units, "level": level.value, "as_of": data.as_of},
        )
        if not created and data.as_of >= stock.as_of:
            stock.available_units = data.available_units
            stock.level = level.value
            stock.as_of = data.as_of
            stock.save()
    return alert
