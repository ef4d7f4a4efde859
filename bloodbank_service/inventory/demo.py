"""Deterministic demo inventory for ``manage.py seed_demo`` (seeded random, the same every run)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from inventory import rules
from inventory.din import make_din
from inventory.products import default_product_code
from shared_events.enums import BloodGroup, Component, UnitAttribute

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
    product_code: str = ""
    special_attributes: tuple[str, ...] = ()
    antigen_negative: tuple[str, ...] = ()
    irradiated_at: datetime | None = None

    @property
    def code(self) -> str:
        return self.product_code or default_product_code(self.component)

    @property
    def division(self) -> str:
        return self.code[-2:]


def demo_units(now: datetime, seed: int = 128) -> list[DemoUnit]:
    """About 370 units over every component and group, expiries spread over each shelf life.

    A few units are near expiry and a few already past it; every group has
    some of every component; at least 16 O+ red cells are comfortably in date.
    Then ``special_units``: the units that exercise transfusion.md sections 5 to 8.
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
    return units + special_units(anchor)


SPECIAL_FACILITY = "B1235"
IRRADIATED_CMV_NEGATIVE = (UnitAttribute.LEUKOREDUCED.value, UnitAttribute.IRRADIATED.value, "CMV_NEGATIVE")


def special_units(anchor: datetime) -> list[DemoUnit]:
    """Units with special attributes and ISBT 128 product identity, all in date (transfusion.md sections 5-8).

    * irradiated, CMV-negative red cells (PDC E0404), some also K-negative, of groups O-, O+, A+;
    * K-negative (and E-negative) red cells, not irradiated;
    * group O red cells of both RhD (an unknown-group or unconfirmed patient gets group O);
    * AB plasma, and HT-negative group A plasma (the substitute for AB plasma);
    * red cells and plasma of one donation (one DIN, two product codes);
    * a split platelet unit: divisions A0 and B0 of one donation.
    """
    units: list[DemoUnit] = []
    sequence = iter(range(1, 1000))

    def add(component: Component, group: BloodGroup, *, days_old: int, **fields) -> DemoUnit:
        collected_at = anchor - timedelta(days=days_old)
        shelf = rules.SHELF_LIFE[component]
        fields.setdefault("expires_at", collected_at + shelf)
        unit = DemoUnit(
            din=fields.pop("din", None) or make_din(SPECIAL_FACILITY, collected_at.year, next(sequence)),
            component=component,
            blood_group=group,
            volume_ml=fields.pop("volume_ml", VOLUME_ML[component][0] + 20),
            collected_at=collected_at,
            batch=f"SP-{collected_at:%y%m%d}",
            **fields,
        )
        units.append(unit)
        return unit

    red, plasma, platelets = Component.RED_CELLS, Component.PLASMA, Component.PLATELETS
    for index, group in enumerate([BloodGroup.O_NEG] * 4 + [BloodGroup.O_POS] * 4 + [BloodGroup.A_POS] * 2):
        irradiated_at = anchor - timedelta(days=2)
        add(
            red,
            group,
            days_old=4,
            product_code="E0404V00",
            special_attributes=IRRADIATED_CMV_NEGATIVE,
            antigen_negative=("K",) if index % 2 == 0 else (),
            irradiated_at=irradiated_at,
            expires_at=irradiated_at + timedelta(days=14),
        )
    for group in [BloodGroup.O_NEG, BloodGroup.O_NEG, BloodGroup.O_POS, BloodGroup.O_POS, BloodGroup.A_POS]:
        add(red, group, days_old=6, special_attributes=("CMV_NEGATIVE",), antigen_negative=("K", "E"))
    for group in [BloodGroup.O_NEG] * 8 + [BloodGroup.O_POS] * 6:
        add(red, group, days_old=3)
    for group in [BloodGroup.AB_POS] * 6 + [BloodGroup.AB_NEG] * 4:
        add(plasma, group, days_old=20)
    for group in [BloodGroup.A_POS] * 6 + [BloodGroup.A_NEG] * 2:
        add(plasma, group, days_old=15, special_attributes=("HT_NEGATIVE",))
    # One donation, two components: the same DIN, two product codes.
    donation = make_din(SPECIAL_FACILITY, anchor.year, 900)
    add(red, BloodGroup.O_NEG, days_old=2, din=donation, product_code="E0398V00")
    add(plasma, BloodGroup.O_NEG, days_old=2, din=donation, product_code="E2555V00")
    # A split platelet unit: one donation, divisions A0 and B0.
    split = make_din(SPECIAL_FACILITY, anchor.year, 901)
    for code in ("E3087VA0", "E3087VB0"):
        add(platelets, BloodGroup.A_POS, days_old=1, din=split, product_code=code, volume_ml=140)
    return units
