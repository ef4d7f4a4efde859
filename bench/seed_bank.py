"""Stock the bench's blood bank: bulk-insert units, then count the stock once.

Run by system_bench.py as ``python bench/seed_bank.py TOTAL`` in ``bloodbank_service/``
with the service's environment. Units are inserted with one ``COPY`` per table
(``bench/bulk.py``: 100,000 units and their "received" history rows in a few seconds);
the stock counters (``StockSnapshot.status_available``, otherwise kept by deltas on
every status change) are then recounted once with ``refresh_stock(recount=True)``,
exactly as ``seed_demo`` does, which also queues the ``inventory.updated`` events
for the other services.

``--restock`` (bench/growth.py, between the steps of a ramp) tops every stock key
back up to its share of TOTAL available units instead, so that each step starts
with the same stock size however much the previous steps took. Prints the number
of units inserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, os.getcwd())  # the service folder
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

FACILITY = "Z9998"  # the bench's own DINs (the demo data uses other facility codes)


def main(total: int, *, restock: bool = False) -> None:
    import django

    django.setup()
    from bulk import copy_rows
    from django.db import transaction
    from django.db.models import Count
    from django.utils import timezone
    from inventory import rules
    from inventory.din import make_din
    from inventory.models import Unit, UnitStatus, UnitStatusChange
    from inventory.products import default_product_code
    from inventory.services import ALL_KEYS, ensure_stock_keys, refresh_stock
    from mix import units_per_key

    from shared_events.enums import Component

    now = timezone.now()
    product_codes = {component: default_product_code(component) for component in Component}
    with transaction.atomic():
        wanted = units_per_key(total)
        sequence = 0
        if restock:
            available = {
                (row["component"], row["blood_group"]): row["n"]
                for row in Unit.objects.filter(status=UnitStatus.AVAILABLE)
                .values("component", "blood_group")
                .annotate(n=Count("id"))
            }
            wanted = {key: max(0, count - available.get(key, 0)) for key, count in wanted.items()}
            sequence = Unit.objects.filter(din__startswith=FACILITY).count()
        units = []
        for (component, group), count in wanted.items():
            shelf = rules.SHELF_LIFE[Component(component)]
            for index in range(count):
                sequence += 1
                collected = now - timedelta(hours=12 + index % 24)
                units.append(
                    {
                        "id": uuid.uuid4(),
                        "din": make_din(FACILITY, now.year, sequence),
                        "component": component,
                        "product_code": product_codes[Component(component)],
                        "blood_group": group,
                        "volume_ml": 280,
                        "collected_at": collected,
                        "expires_at": collected + shelf,
                        "batch": f"BENCH-{sequence // 500}",
                        "status": UnitStatus.AVAILABLE.value,
                    }
                )
        copy_rows(Unit, units, now=now)
        history = {"to_status": UnitStatus.AVAILABLE.value, "at": now, "by": "system:bench", "reason": "bench"}
        copy_rows(UnitStatusChange, ({"unit_id": unit["id"]} | history for unit in units), now=now)
        ensure_stock_keys()
        refresh_stock(keys=ALL_KEYS, recount=True)
    print(len(units))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("total", type=int, help="units to stock (split over the stock keys like the demand)")
    parser.add_argument("--restock", action="store_true", help="top each key back up to its share of TOTAL")
    args = parser.parse_args()
    main(args.total, restock=args.restock)
