"""Stock the bench's blood bank: bulk-insert units, then count the stock once.

Run by system_bench.py as ``python bench/seed_bank.py TOTAL`` in ``bloodbank_service/``
with the service's environment. Units are inserted with ``bulk_create`` (with their
"received" history rows); the stock counters (``StockSnapshot.status_available``,
otherwise kept by deltas on every status change) are then recounted once with
``refresh_stock(recount=True)``, exactly as ``seed_demo`` does, which also queues the
``inventory.updated`` events for the other services.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, os.getcwd())  # the service folder
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main(total: int) -> None:
    import django

    django.setup()
    from django.db import transaction
    from django.utils import timezone
    from inventory import rules
    from inventory.din import make_din
    from inventory.models import Unit, UnitStatus, UnitStatusChange
    from inventory.products import default_product_code
    from inventory.services import ALL_KEYS, ensure_stock_keys, refresh_stock
    from mix import units_per_key

    from shared_events.enums import Component

    now = timezone.now()
    units = []
    sequence = 0
    for (component, group), count in units_per_key(total).items():
        shelf = rules.SHELF_LIFE[Component(component)]
        for index in range(count):
            sequence += 1
            collected = now - timedelta(hours=12 + index % 24)
            units.append(
                Unit(
                    din=make_din("Z9998", now.year, sequence),
                    component=component,
                    product_code=default_product_code(component),
                    blood_group=group,
                    volume_ml=280,
                    collected_at=collected,
                    expires_at=collected + shelf,
                    batch=f"BENCH-{sequence // 500}",
                    status=UnitStatus.AVAILABLE,
                )
            )
    with transaction.atomic():
        Unit.objects.bulk_create(units, batch_size=2000)
        UnitStatusChange.objects.bulk_create(
            (
                UnitStatusChange(unit=unit, to_status=UnitStatus.AVAILABLE, at=now, by="system:bench", reason="bench")
                for unit in units
            ),
            batch_size=2000,
        )
        ensure_stock_keys()
        refresh_stock(keys=ALL_KEYS, recount=True)
    print(len(units))


if __name__ == "__main__":
    main(int(sys.argv[1]))
