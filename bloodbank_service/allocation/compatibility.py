"""ABO/RhD compatibility and the allocation order of domain.md, as pure functions.

No Django here: the decision service asks these functions which donor groups
to try, in which order, and which units to take, then locks those rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from shared_events.enums import BloodGroup, Component, Priority

ALL_GROUPS: tuple[BloodGroup, ...] = tuple(BloodGroup)

_PLASMA_ABO: dict[str, frozenset[str]] = {
    "O": frozenset({"O", "A", "B", "AB"}),
    "A": frozenset({"A", "AB"}),
    "B": frozenset({"B", "AB"}),
    "AB": frozenset({"AB"}),
}


def _red_cell_abo_ok(recipient: BloodGroup, donor: BloodGroup) -> bool:
    # The donor's A/B antigens must all be carried by the recipient.
    return set(donor.abo.replace("O", "")) <= set(recipient.abo.replace("O", ""))


def _rhd_ok(recipient: BloodGroup, donor: BloodGroup) -> bool:
    return recipient.rhd_positive or not donor.rhd_positive


def is_compatible(component: Component, recipient: BloodGroup, donor: BloodGroup) -> bool:
    """May a ``recipient`` receive ``component`` of the ``donor`` group? (domain.md tables)."""
    if component == Component.RED_CELLS:
        return _red_cell_abo_ok(recipient, donor) and _rhd_ok(recipient, donor)
    if component == Component.PLASMA:
        return donor.abo in _PLASMA_ABO[recipient.abo]
    if component == Component.PLATELETS:
        return donor.abo in _PLASMA_ABO[recipient.abo] and _rhd_ok(recipient, donor)
    if component == Component.WHOLE_BLOOD:
        return donor.abo == recipient.abo and _rhd_ok(recipient, donor)
    if component == Component.CRYO:
        return True
    raise ValueError(f"unknown component {component!r}")


def compatible_donors(component: Component, recipient: BloodGroup) -> tuple[BloodGroup, ...]:
    """Every donor group ``recipient`` may receive ``component`` from."""
    return tuple(donor for donor in ALL_GROUPS if is_compatible(component, recipient, donor))


def is_emergency_reserve(component: Component, recipient: BloodGroup, donor: BloodGroup) -> bool:
    """O-negative red cells for a recipient who is not O-negative: the emergency reserve."""
    return component == Component.RED_CELLS and donor == BloodGroup.O_NEG and recipient != BloodGroup.O_NEG


def donor_order(
    component: Component,
    recipient: BloodGroup,
    priority: Priority,
    available: Mapping[BloodGroup, int] | None = None,
) -> list[BloodGroup]:
    """Donor groups to draw from, in order.

    The identical group first; then the compatible substitutes, most plentiful
    first (``available`` counts; ties in the fixed group order); O-negative red
    cells last, and only for EMERGENCY requests unless the recipient is O-.
    """
    available = available or {}
    donors = compatible_donors(component, recipient)
    substitutes = [
        donor for donor in donors if donor != recipient and not is_emergency_reserve(component, recipient, donor)
    ]
    substitutes.sort(key=lambda donor: (-available.get(donor, 0), ALL_GROUPS.index(donor)))
    order = ([recipient] if recipient in donors else []) + substitutes
    if (
        component == Component.RED_CELLS
        and recipient != BloodGroup.O_NEG
        and BloodGroup.O_NEG in donors
        and priority == Priority.EMERGENCY
    ):
        order.append(BloodGroup.O_NEG)
    return order


class UnitLike(Protocol):
    @property
    def blood_group(self) -> str: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def din(self) -> str: ...


def fefo_key(unit: UnitLike) -> tuple[datetime, str]:
    """First expired, first out; then the oldest DIN."""
    return (unit.expires_at, unit.din)


def usable(unit: UnitLike, *, now: datetime, needed_by: datetime | None) -> bool:
    """Not expired at ``now`` and, for a scheduled request, not expiring before ``needed_by``."""
    return unit.expires_at > now and (needed_by is None or unit.expires_at >= needed_by)


U = TypeVar("U", bound=UnitLike)


@dataclass(frozen=True)
class Wanted:
    """What a request asks for, as the allocation rules need it."""

    component: Component
    blood_group: BloodGroup
    units: int
    priority: Priority
    allow_partial: bool
    needed_by: datetime | None = None


def choose_units(wanted: Wanted, units: Iterable[U], *, now: datetime) -> list[U]:
    """The units the policy takes for ``wanted`` from ``units`` (all AVAILABLE units of the component).

    Returns at most ``wanted.units`` units; fewer when stock is short (the
    caller decides between partial approval and rejection).
    """
    needed_by = wanted.needed_by if wanted.priority == Priority.SCHEDULED else None
    by_group: dict[BloodGroup, list[U]] = {}
    for unit in units:
        if usable(unit, now=now, needed_by=needed_by):
            by_group.setdefault(BloodGroup(unit.blood_group), []).append(unit)
    counts = {group: len(found) for group, found in by_group.items()}
    chosen: list[U] = []
    for group in donor_order(wanted.component, wanted.blood_group, wanted.priority, counts):
        remaining = wanted.units - len(chosen)
        if remaining <= 0:
            break
        chosen.extend(sorted(by_group.get(group, []), key=fefo_key)[:remaining])
    return chosen


def outcome(wanted: Wanted, found: int) -> str:
    """'APPROVED', 'PARTIAL', 'INSUFFICIENT_STOCK' or 'NO_COMPATIBLE_UNITS' for ``found`` units."""
    if found >= wanted.units:
        return "APPROVED"
    if found > 0 and wanted.allow_partial:
        return "PARTIAL"
    return "INSUFFICIENT_STOCK" if found > 0 else "NO_COMPATIBLE_UNITS"
