"""ABO/RhD compatibility, the allocation order of domain.md and the restrictions of transfusion.md
sections 5-7 (emergency release, the confirmed-group rule, special requirements, MTP packs), as pure
functions and tables.

No Django here: the decision service asks these functions which donor groups to try, in which order,
which attributes each group's units must carry, and which units to take, then locks those rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from shared_events.enums import (
    ANTIGENS,
    UNKNOWN_GROUP,
    BloodGroup,
    Component,
    Priority,
    RejectReason,
    RequestProtocol,
    SpecialRequirement,
    UnitAttribute,
)

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

    The identical group first; then the compatible substitutes, RhD-positive before
    RhD-negative for an RhD-positive recipient (RhD-negative stock is scarce), then the most
    plentiful first (``available`` counts; ties in the fixed group order); O-negative red
    cells last, and only for EMERGENCY requests unless the recipient is O-.
    """
    available = available or {}
    donors = compatible_donors(component, recipient)
    substitutes = [
        donor for donor in donors if donor != recipient and not is_emergency_reserve(component, recipient, donor)
    ]
    substitutes.sort(
        key=lambda donor: (
            recipient.rhd_positive and not donor.rhd_positive,
            -available.get(donor, 0),
            ALL_GROUPS.index(donor),
        )
    )
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
    @property
    def special_attributes(self) -> Sequence[str]: ...
    @property
    def antigen_negative(self) -> Sequence[str]: ...


def fefo_key(unit: UnitLike) -> tuple[datetime, str]:
    """First expired, first out; then the oldest DIN."""
    return (unit.expires_at, unit.din)


def usable(unit: UnitLike, *, now: datetime, needed_by: datetime | None) -> bool:
    """Not expired at ``now`` and, for a scheduled request, not expiring before ``needed_by``."""
    return unit.expires_at > now and (needed_by is None or unit.expires_at >= needed_by)


U = TypeVar("U", bound=UnitLike)


# -- special requirements (transfusion.md section 6) ---------------------------------------------
_RED_CELLS_PLATELETS_WHOLE = frozenset({Component.RED_CELLS, Component.PLATELETS, Component.WHOLE_BLOOD})
REQUIREMENT_APPLIES_TO: dict[SpecialRequirement, frozenset[Component]] = {
    SpecialRequirement.IRRADIATED: _RED_CELLS_PLATELETS_WHOLE,
    SpecialRequirement.CMV_NEGATIVE: _RED_CELLS_PLATELETS_WHOLE,
    SpecialRequirement.LEUKOREDUCED: frozenset(Component),
    SpecialRequirement.WASHED: frozenset({Component.RED_CELLS, Component.PLATELETS}),
    SpecialRequirement.HBS_NEGATIVE: frozenset({Component.RED_CELLS, Component.WHOLE_BLOOD}),
}
"""Which components a special requirement applies to; it is ignored for the others."""

ANTIGEN_NEGATIVE_APPLIES_TO: frozenset[Component] = frozenset({Component.RED_CELLS, Component.WHOLE_BLOOD})
"""Antigen-negative matching concerns the red cells a unit contains."""


def required_attributes(component: Component, special_requirements: Iterable[str]) -> frozenset[str]:
    """The ``special_attributes`` every unit of ``component`` must carry for these requirements."""
    return frozenset(
        requirement
        for requirement in special_requirements
        if component in REQUIREMENT_APPLIES_TO[SpecialRequirement(requirement)]
    )


def required_antigens(component: Component, antigen_negative: Iterable[str]) -> frozenset[str]:
    """The antigens every unit of ``component`` must be typed negative for."""
    if component not in ANTIGEN_NEGATIVE_APPLIES_TO:
        return frozenset()
    antigens = frozenset(antigen_negative)
    unknown = antigens - set(ANTIGENS)
    if unknown:
        raise ValueError(f"unknown antigens {sorted(unknown)}")
    return antigens


# -- what a request asks for -------------------------------------------------------------------
@dataclass(frozen=True)
class Wanted:
    """What a request (or one component of an MTP pack) asks for, as the allocation rules need it.

    ``blood_group`` None: the patient's group is UNKNOWN (emergency release). ``group_confirmed``
    defaults to False, the safe choice: group O red cells and AB (or A) plasma whatever the stated group.
    """

    component: Component
    blood_group: BloodGroup | None
    units: int
    priority: Priority
    allow_partial: bool
    needed_by: datetime | None = None
    group_confirmed: bool = False
    rhd_negative_required: bool = True
    special_requirements: frozenset[str] = frozenset()
    antigen_negative: frozenset[str] = frozenset()
    a_plasma_requires_ht_negative: bool = True

    @property
    def group_unknown(self) -> bool:
        return self.blood_group is None

    @property
    def restricted(self) -> bool:
        """The section 5 restriction applies: the group is unknown or not confirmed."""
        return self.blood_group is None or not self.group_confirmed

    @property
    def attributes(self) -> frozenset[str]:
        return required_attributes(self.component, self.special_requirements)

    @property
    def antigens(self) -> frozenset[str]:
        return required_antigens(self.component, self.antigen_negative)


@dataclass(frozen=True)
class DonorStep:
    """Units of one donor group, each carrying ``attributes`` and negative for ``antigens``."""

    group: BloodGroup
    attributes: frozenset[str]
    antigens: frozenset[str]


_PLATELET_ABO_ORDER = ("AB", "A", "B", "O")


def _by_plenty(groups: Iterable[BloodGroup], available: Mapping[BloodGroup, int]) -> list[BloodGroup]:
    return sorted(groups, key=lambda donor: (-available.get(donor, 0), ALL_GROUPS.index(donor)))


def _rhd_positive_first(groups: Iterable[BloodGroup]) -> list[BloodGroup]:
    # RhD-negative stock is scarce: an RhD-positive (or RhD-indifferent) recipient takes RhD-positive first.
    return sorted(groups, key=lambda donor: (not donor.rhd_positive, ALL_GROUPS.index(donor)))


def restricted_donor_order(wanted: Wanted, available: Mapping[BloodGroup, int] | None = None) -> list[BloodGroup]:
    """Donor groups, in order, for a recipient whose group is UNKNOWN or not confirmed (section 5 table).

    Red cells: group O only (UNKNOWN: O- unless ``rhd_negative_required`` is false, then O+ then O-;
    known: as an O recipient of the stated RhD). Plasma: AB, then A. Platelets: any ABO in the order
    AB, A, B, O; RhD-negative only while required (UNKNOWN) or stated (known). Cryo: any group.
    Whole blood: none (such a request is invalid).
    """
    available = available or {}
    component, recipient = wanted.component, wanted.blood_group
    if component == Component.WHOLE_BLOOD:
        return []
    if component == Component.RED_CELLS:
        if recipient is None:
            return [BloodGroup.O_NEG] if wanted.rhd_negative_required else [BloodGroup.O_POS, BloodGroup.O_NEG]
        as_o = BloodGroup.O_POS if recipient.rhd_positive else BloodGroup.O_NEG
        return donor_order(Component.RED_CELLS, as_o, wanted.priority, available)
    if component == Component.PLASMA:
        ab = _by_plenty([BloodGroup.AB_POS, BloodGroup.AB_NEG], available)
        a = _by_plenty([BloodGroup.A_POS, BloodGroup.A_NEG], available)
        return ab + a
    if component == Component.PLATELETS:
        negative_only = wanted.rhd_negative_required if recipient is None else not recipient.rhd_positive
        order: list[BloodGroup] = []
        for abo in _PLATELET_ABO_ORDER:
            groups = [group for group in ALL_GROUPS if group.abo == abo]
            if negative_only:
                groups = [group for group in groups if not group.rhd_positive]
            order.extend(_rhd_positive_first(groups))
        return order
    if component == Component.CRYO:
        return _by_plenty(ALL_GROUPS, available)
    raise ValueError(f"unknown component {component!r}")


def donor_groups(wanted: Wanted, available: Mapping[BloodGroup, int] | None = None) -> list[BloodGroup]:
    """Every donor group ``wanted`` may draw from, in policy order (``available``: counts per group)."""
    if wanted.restricted:
        return restricted_donor_order(wanted, available)
    return donor_order(wanted.component, wanted.blood_group, wanted.priority, available)


def group_attributes(wanted: Wanted, donor: BloodGroup) -> frozenset[str]:
    """The attributes units of ``donor`` must carry for ``wanted``: the request's, plus HT_NEGATIVE for group
    A plasma given to a recipient of unknown or unconfirmed group (while A_PLASMA_REQUIRES_HT_NEGATIVE)."""
    attributes = wanted.attributes
    if (
        wanted.restricted
        and wanted.component == Component.PLASMA
        and donor.abo == "A"
        and wanted.a_plasma_requires_ht_negative
    ):
        attributes |= {UnitAttribute.HT_NEGATIVE.value}
    return attributes


def donor_plan(wanted: Wanted, available: Mapping[BloodGroup, int] | None = None) -> list[DonorStep]:
    """The donor groups in order, each with what its units must carry."""
    antigens = wanted.antigens
    return [
        DonorStep(group=group, attributes=group_attributes(wanted, group), antigens=antigens)
        for group in donor_groups(wanted, available)
    ]


def first_choice(wanted: Wanted) -> DonorStep | None:
    """The step that comes first whatever the stock (the fast path takes it alone); None: stock decides."""
    if wanted.restricted:
        if wanted.component == Component.RED_CELLS:
            plan = donor_plan(wanted)
            return plan[0] if plan else None
        return None  # plasma AB+/AB-, cryo: the order depends on the counts
    if wanted.blood_group in compatible_donors(wanted.component, wanted.blood_group):
        return donor_plan(wanted)[0]
    return None


def qualifies(unit: UnitLike, step: DonorStep) -> bool:
    """Is ``unit`` of the step's group, carrying its attributes and negative for its antigens?"""
    return (
        unit.blood_group == step.group.value
        and step.attributes <= set(unit.special_attributes)
        and step.antigens <= set(unit.antigen_negative)
    )


def may_receive(wanted: Wanted, unit: UnitLike) -> bool:
    """May ``unit`` (of ``wanted.component``) go to ``wanted`` at all? (group, attributes, antigens)."""
    return any(qualifies(unit, step) for step in donor_plan(wanted))


def choose_units(wanted: Wanted, units: Iterable[U], *, now: datetime) -> list[U]:
    """The units the policy takes for ``wanted`` from ``units`` (all AVAILABLE units of the component).

    Returns at most ``wanted.units`` units; fewer when stock is short (the
    caller decides between partial approval and rejection).
    """
    needed_by = wanted.needed_by if wanted.priority == Priority.SCHEDULED else None
    fit = [unit for unit in units if usable(unit, now=now, needed_by=needed_by)]
    counts: dict[BloodGroup, int] = {}
    for unit in fit:
        counts[BloodGroup(unit.blood_group)] = counts.get(BloodGroup(unit.blood_group), 0) + 1
    chosen: list[U] = []
    for step in donor_plan(wanted, counts):
        remaining = wanted.units - len(chosen)
        if remaining <= 0:
            break
        chosen.extend(sorted((unit for unit in fit if qualifies(unit, step)), key=fefo_key)[:remaining])
    return chosen


def compatible_count(wanted: Wanted, units: Iterable[UnitLike], *, now: datetime) -> int:
    """Usable units of an allowed group, whatever their attributes (to tell requirements from shortage)."""
    needed_by = wanted.needed_by if wanted.priority == Priority.SCHEDULED else None
    groups = {group.value for group in donor_groups(wanted)}
    return sum(1 for unit in units if unit.blood_group in groups and usable(unit, now=now, needed_by=needed_by))


def outcome(wanted: Wanted, found: int, compatible: int | None = None) -> str:
    """'APPROVED', 'PARTIAL', or a reject reason for ``found`` qualifying units.

    ``compatible``: usable units of an allowed group ignoring special requirements (None: as ``found``).
    When the requirements made the difference, the reason is NO_UNITS_MEETING_REQUIREMENTS.
    """
    compatible = found if compatible is None else compatible
    if found >= wanted.units:
        return "APPROVED"
    if found > 0 and wanted.allow_partial:
        return "PARTIAL"
    if compatible > found:
        return RejectReason.NO_UNITS_MEETING_REQUIREMENTS.value
    return RejectReason.INSUFFICIENT_STOCK.value if found > 0 else RejectReason.NO_COMPATIBLE_UNITS.value


# -- validation (transfusion.md sections 5 and 7; domain.md rule 1) --------------------------------
@dataclass(frozen=True)
class RequestShape:
    """The fields of a request that decide whether it is valid (as stored: strings)."""

    protocol: str
    blood_group: str
    component: str | None
    units: int | None
    priority: str
    allow_partial: bool | None
    authorised_by: str
    group_confirmed: bool
    special_requirements: tuple[str, ...] = ()
    antigen_negative: tuple[str, ...] = ()


def invalid_reason(shape: RequestShape) -> str | None:
    """Why the request is INVALID_REQUEST, or None. (needed_by is checked by the caller: it needs the clock.)"""
    known_groups = {group.value for group in BloodGroup} | {UNKNOWN_GROUP}
    if shape.blood_group not in known_groups:
        return "unknown blood group"
    if shape.priority not in {p.value for p in Priority}:
        return "unknown priority"
    if shape.protocol not in {p.value for p in RequestProtocol}:
        return "unknown protocol"
    if not set(shape.special_requirements) <= {r.value for r in SpecialRequirement}:
        return "unknown special requirement"
    if not set(shape.antigen_negative) <= set(ANTIGENS):
        return "unknown antigen"
    unknown = shape.blood_group == UNKNOWN_GROUP
    if unknown or shape.protocol == RequestProtocol.MTP:
        what = "an MTP request" if shape.protocol == RequestProtocol.MTP else "an UNKNOWN blood group"
        if shape.priority != Priority.EMERGENCY:
            return f"{what} needs priority EMERGENCY"
        if not shape.authorised_by:
            return f"{what} needs authorised_by (the clinician)"
    if unknown and shape.allow_partial is False:
        return "an UNKNOWN blood group is never all-or-nothing: allow_partial must be true"
    if shape.protocol == RequestProtocol.MTP:
        if shape.component or shape.units:
            return "an MTP request has no component or units: the packs say what is sent"
        return None
    if shape.component not in {c.value for c in Component}:
        return "unknown component"
    if not 1 <= (shape.units or 0) <= 20:
        return "units must be between 1 and 20"
    if shape.component == Component.WHOLE_BLOOD and (unknown or not shape.group_confirmed):
        return "whole blood is ABO-identical: it needs a confirmed blood group"
    return None


# -- massive transfusion packs (transfusion.md section 7) ----------------------------------------
@dataclass(frozen=True)
class PackRecipe:
    red_cells: int = 4
    plasma: int = 4
    platelets: int = 1
    platelets_from_pack: int = 2

    def contents(self, pack: int) -> list[tuple[Component, int]]:
        """What pack number ``pack`` holds: (component, units), components with none left out."""
        parts = [
            (Component.RED_CELLS, self.red_cells),
            (Component.PLASMA, self.plasma),
            (Component.PLATELETS, self.platelets if pack >= self.platelets_from_pack else 0),
        ]
        return [(component, count) for component, count in parts if count > 0]
