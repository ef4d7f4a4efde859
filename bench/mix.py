"""What the simulated hospitals ask for: one request mix, shared by the seeding and the load.

The bank is stocked in the same proportions as the demand (with room to spare),
so every step of the ramp decides the same kind of work: approvals from the
recipient's own group, the common path.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

# Roughly the population's share of each group.
GROUP_WEIGHTS = {"O+": 38, "A+": 30, "B+": 9, "O-": 7, "A-": 6, "AB+": 4, "B-": 3, "AB-": 3}
COMPONENT_WEIGHTS = {"RED_CELLS": 70, "PLASMA": 15, "PLATELETS": 10, "WHOLE_BLOOD": 5}
EMERGENCY_SHARE = 0.7
UNITS_CHOICES = (1, 2, 2, 3)  # 2 units on average
MEAN_UNITS = sum(UNITS_CHOICES) / len(UNITS_CHOICES)


def request_bodies(count: int, *, seed: int) -> list[dict]:
    """``count`` request bodies for ``POST /api/v1/blood-requests/`` (deterministic for a seed)."""
    rng = random.Random(seed)
    groups, group_weights = list(GROUP_WEIGHTS), list(GROUP_WEIGHTS.values())
    components, component_weights = list(COMPONENT_WEIGHTS), list(COMPONENT_WEIGHTS.values())
    needed_by = (datetime.now(UTC) + timedelta(hours=6)).isoformat()
    bodies = []
    for index in range(count):
        emergency = rng.random() < EMERGENCY_SHARE
        body = {
            "blood_group": rng.choices(groups, group_weights)[0],
            "component": rng.choices(components, component_weights)[0],
            "units": rng.choice(UNITS_CHOICES),
            "priority": "EMERGENCY" if emergency else "SCHEDULED",
            # Patients typed twice: group-specific units (the common path the stock is seeded for).
            "group_confirmed": True,
            "patient_reference": f"BENCH-{seed}-{index}",
        }
        if not emergency:
            body["needed_by"] = needed_by
        bodies.append(body)
    return bodies


def units_per_key(total: int) -> dict[tuple[str, str], int]:
    """``total`` units split over (component, group) like the demand."""
    g_sum, c_sum = sum(GROUP_WEIGHTS.values()), sum(COMPONENT_WEIGHTS.values())
    return {
        (component, group): max(20, round(total * cw / c_sum * gw / g_sum))
        for component, cw in COMPONENT_WEIGHTS.items()
        for group, gw in GROUP_WEIGHTS.items()
    }
