"""Bank stock events in: thin, each calls one service."""

from __future__ import annotations

from bank_stock import services
from shared_events.envelope import Event


def handle_inventory_updated(event: Event) -> None:
    services.apply_inventory_update(data=event.data)


def handle_low_stock(event: Event) -> None:
    services.record_stock_crossing(data=event.data, event_id=event.id)
