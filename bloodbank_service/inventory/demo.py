"""Deterministic demo inventory for ``manage.py seed_demo`` (seeded random, the same every run)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from inventory import rules
from inventory.din import make_din
from shared_events.enums import BloodGroup, Component

FACILITY = "B1234"
# Roughly the population's share of each group (red cells, whole blood).
GROUP_WEIGHTS = {
    BloodGroup.O_POS: 38,
    BloodGroup.A_POS: 30,
    BloodGroup.B_POS: 9,
    BloodGroup.O_NEG: 7,
    BloodGroup.A_NEG: 6,
    BloodGroup.AB_POS: 4,
    BloodGroup.B_NEG: 3,
    BloodGroup.AB_NEG: 3,
}
UNITS_PER_COMPONENT = {
    Component.RED_CELLS: 140,
    Component.PLASMA: 60,
    Component.PLATELETS: 40,
    Component.WHOLE_BLOOD: 30,
    Component.CRYO: 30,
}
VOLUME_ML = {
    Component.RED_CELLS: (250, 300),
    Component.WHOLE_BLOOD: (450, 500),
    Component.PLASMA: (200, 300),
    Component.PLATELETS: (200, 300),
    Component.CRYO: (10, 20),
}
GUARANTEED_O_POS_RED_CELLS = 16


@dataclass(frozen=True)
class DemoUnit:
    din: str
    component: Component
    blood_group: BloodGroup
    volume_ml: int
    collected_at: datetime
    expires_at: datetime
    batch: str


def demo_units(now: datetime, seed: int = 128) -> list[DemoUnit]:
    """About 300 units over every component and group, expiries spread over each shelf life.

    A few units are near expiry and a few already past it; every group has
    some of every component; at least 16 O+ red cells are comfortably in date.
    """
    rng = random.Random(seed)
    # Date arithmetic from a whole-hour anchor keeps re-runs in the same hour identical.
    anchor = now.replace(minute=0, second=0, microsecond=0)
    units: list[DemoUnit] = []
    sequence = 100000
    groups, weights = list(GROUP_WEIGHTS), list(GROUP_WEIGHTS.values())
    for component, count in UNITS_PER_COMPONENT.items():
        shelf = rules.SHELF_LIFE[component]
        plan = [*groups, *rng.choices(groups, weights=weights, k=count - len(groups))]  # every group at least once
        if component == Component.RED_CELLS:
            plan += [BloodGroup.O_POS] * GUARANTEED_O_POS_RED_CELLS
        for index, group in enumerate(plan):
            sequence += 1
            if index % 25 == 3:
                age = shelf + timedelta(hours=rng.randint(2, 48))  # already expired
            elif index % 25 == 7:
                age = shelf - timedelta(hours=rng.randint(6, 60))  # expiring within 72 h
            elif component == Component.RED_CELLS and index >= count:
                age = timedelta(days=rng.randint(1, 10))  # the guaranteed fresh O+ red cells
            else:
                age = timedelta(hours=rng.randint(1, max(2, int(shelf.total_seconds() // 3600) - 72)))
            collected_at = anchor - age
            collection_day = collected_at.strftime("%y%m%d")
            units.append(
                DemoUnit(
                    din=make_din(FACILITY, collected_at.year, sequence),
                    component=component,
                    blood_group=group,
                    volume_ml=rng.randint(*VOLUME_ML[component]),
                    collected_at=collected_at,
                    expires_at=collected_at + shelf,
                    batch=f"{component.value[:2]}-{collection_day}-{rng.randint(1, 3)}",
                )
            )
    return units
