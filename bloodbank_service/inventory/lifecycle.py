"""The unit lifecycle at the bank and the steps of its trace: pure tables, no Django.

    AVAILABLE ──▶ ALLOCATED ──▶ ISSUED ──▶ TRANSFUSED | WASTED | (returned) QUARANTINED
    ALLOCATED ──▶ AVAILABLE | EXPIRED (released) | QUARANTINED (recalled)
    AVAILABLE ⇄ QUARANTINED ──▶ DISCARDED;  AVAILABLE ──▶ EXPIRED | DISCARDED
    ISSUED ──▶ WASTED (a return the bank cannot take back)

A cancel never moves an ISSUED unit (transfusion.md section 3): only the
hospital's fate does. TRANSFUSED, WASTED, DISCARDED and EXPIRED are final.
"""

from __future__ import annotations

from enum import StrEnum

AVAILABLE, ALLOCATED, ISSUED, QUARANTINED = "AVAILABLE", "ALLOCATED", "ISSUED", "QUARANTINED"
EXPIRED, DISCARDED, TRANSFUSED, WASTED = "EXPIRED", "DISCARDED", "TRANSFUSED", "WASTED"

UNIT_TRANSITIONS: dict[str, frozenset[str]] = {
    AVAILABLE: frozenset({ALLOCATED, QUARANTINED, EXPIRED, DISCARDED}),
    ALLOCATED: frozenset({AVAILABLE, EXPIRED, ISSUED, QUARANTINED}),
    ISSUED: frozenset({TRANSFUSED, WASTED, QUARANTINED}),
    QUARANTINED: frozenset({AVAILABLE, EXPIRED, DISCARDED}),
    EXPIRED: frozenset({DISCARDED}),
    DISCARDED: frozenset(),
    TRANSFUSED: frozenset(),
    WASTED: frozenset(),
}
FINAL = frozenset(status for status, targets in UNIT_TRANSITIONS.items() if not targets)


def can_move(current: str, target: str) -> bool:
    return target in UNIT_TRANSITIONS.get(current, frozenset())


class Step(StrEnum):
    RECEIVED_AT_BANK = "RECEIVED_AT_BANK"
    ALLOCATED = "ALLOCATED"
    RELEASED = "RELEASED"
    DISPATCHED = "DISPATCHED"
    RECEIVED_BY_HOSPITAL = "RECEIVED_BY_HOSPITAL"
    TRANSFUSED = "TRANSFUSED"
    WASTED = "WASTED"
    RETURNED = "RETURNED"
    RESTOCKED = "RESTOCKED"
    QUARANTINED = "QUARANTINED"
    RECALLED = "RECALLED"
    DISCARDED = "DISCARDED"
    EXPIRED = "EXPIRED"
    # Processing at the bank after receipt (not in transfusion.md's list): irradiation changes the
    # unit's attributes and, for red cells, its expiry; the status stays as it was.
    IRRADIATED = "IRRADIATED"


def step_of(*, from_status: str, to_status: str, recorded_step: str = "") -> Step:
    """The trace step of one history row: the step recorded with it, else derived from the statuses."""
    if recorded_step:
        return Step(recorded_step)
    if not from_status:
        return Step.RECEIVED_AT_BANK
    if from_status == ALLOCATED and to_status in (AVAILABLE, EXPIRED):
        return Step.RELEASED
    if from_status == QUARANTINED and to_status == AVAILABLE:
        return Step.RESTOCKED
    return {
        ALLOCATED: Step.ALLOCATED,
        ISSUED: Step.DISPATCHED,
        QUARANTINED: Step.QUARANTINED,
        DISCARDED: Step.DISCARDED,
        EXPIRED: Step.EXPIRED,
        TRANSFUSED: Step.TRANSFUSED,
        WASTED: Step.WASTED,
    }.get(to_status, Step.QUARANTINED if to_status == QUARANTINED else Step.RECEIVED_AT_BANK)


def display_actor(by: str) -> str:
    """``by`` of a trace step: a username, or ``system`` for the bank's own processes."""
    return "system" if not by or by.startswith("system") else by.removeprefix("hospital:")
