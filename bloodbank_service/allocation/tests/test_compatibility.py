"""The compatibility tables and allocation order of domain.md, entry by entry (pure, no database)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocation.compatibility import (
    PackRecipe,
    RequestShape,
    Wanted,
    choose_units,
    compatible_count,
    compatible_donors,
    donor_groups,
    donor_order,
    donor_plan,
    fefo_key,
    first_choice,
    group_attributes,
    invalid_reason,
    is_compatible,
    may_receive,
    outcome,
    required_antigens,
    required_attributes,
    usable,
)
from shared_events.enums import ANTIGENS, BloodGroup, Component, Priority, SpecialRequirement, UnitAttribute

G = BloodGroup
ALL = list(BloodGroup)

# recipient -> donors, copied from the tables of domain.md.
RED_CELLS = {
    "O-": {"O-"},
    "O+": {"O+", "O-"},
    "A-": {"A-", "O-"},
    "A+": {"A+", "A-", "O+", "O-"},
    "B-": {"B-", "O-"},
    "B+": {"B+", "B-", "O+", "O-"},
    "AB-": {"AB-", "A-", "B-", "O-"},
    "AB+": {g.value for g in ALL},
}
PLASMA_ABO = {"O": {"O", "A", "B", "AB"}, "A": {"A", "AB"}, "B": {"B", "AB"}, "AB": {"AB"}}


@pytest.mark.parametrize("recipient", ALL)
@pytest.mark.parametrize("donor", ALL)
def test_red_cells_follow_the_table_for_every_pair(recipient, donor):
    assert is_compatible(Component.RED_CELLS, recipient, donor) is (donor.value in RED_CELLS[recipient.value])


@pytest.mark.parametrize("recipient", ALL)
@pytest.mark.parametrize("donor", ALL)
def test_plasma_is_the_reverse_on_abo_and_ignores_rhd(recipient, donor):
    assert is_compatible(Component.PLASMA, recipient, donor) is (donor.abo in PLASMA_ABO[recipient.abo])


@pytest.mark.parametrize("recipient", ALL)
@pytest.mark.parametrize("donor", ALL)
def test_platelets_are_abo_as_plasma_and_rhd_negative_recipients_get_rhd_negative_only(recipient, donor):
    expected = donor.abo in PLASMA_ABO[recipient.abo] and (recipient.rhd_positive or not donor.rhd_positive)
    assert is_compatible(Component.PLATELETS, recipient, donor) is expected


@pytest.mark.parametrize("recipient", ALL)
@pytest.mark.parametrize("donor", ALL)
def test_whole_blood_is_abo_identical_with_rhd_as_red_cells(recipient, donor):
    expected = donor.abo == recipient.abo and (recipient.rhd_positive or not donor.rhd_positive)
    assert is_compatible(Component.WHOLE_BLOOD, recipient, donor) is expected


@pytest.mark.parametrize("recipient", ALL)
@pytest.mark.parametrize("donor", ALL)
def test_cryo_is_given_from_any_group(recipient, donor):
    assert is_compatible(Component.CRYO, recipient, donor)


def test_an_a_plus_patient_never_gets_b_plus_red_cells():
    assert G.B_POS not in compatible_donors(Component.RED_CELLS, G.A_POS)


def test_an_o_negative_patient_gets_only_o_negative_red_cells():
    assert compatible_donors(Component.RED_CELLS, G.O_NEG) == (G.O_NEG,)


def test_the_identical_group_comes_first_then_rhd_positive_substitutes_then_the_most_plentiful():
    # domain.md rule 3: an RhD-positive recipient takes RhD-positive substitutes before the scarce RhD-negative.
    order = donor_order(Component.RED_CELLS, G.A_POS, Priority.EMERGENCY, {G.A_NEG: 9, G.O_POS: 3, G.O_NEG: 50})
    assert order == [G.A_POS, G.O_POS, G.A_NEG, G.O_NEG]
    counts = {G.B_POS: 5, G.A_POS: 2, G.O_POS: 7, G.A_NEG: 9}
    order = donor_order(Component.RED_CELLS, G.AB_POS, Priority.EMERGENCY, counts)
    assert order == [G.AB_POS, G.O_POS, G.B_POS, G.A_POS, G.A_NEG, G.B_NEG, G.AB_NEG, G.O_NEG]


def test_o_negative_red_cells_are_last_even_when_most_plentiful():
    order = donor_order(Component.RED_CELLS, G.AB_POS, Priority.EMERGENCY, {G.O_NEG: 100})
    assert order[0] == G.AB_POS and order[-1] == G.O_NEG


@pytest.mark.parametrize("recipient", [g for g in ALL if g != G.O_NEG])
def test_o_negative_red_cells_are_kept_for_emergencies_unless_the_recipient_is_o_negative(recipient):
    assert G.O_NEG not in donor_order(Component.RED_CELLS, recipient, Priority.SCHEDULED)
    assert G.O_NEG in donor_order(Component.RED_CELLS, recipient, Priority.EMERGENCY)


def test_an_o_negative_recipient_gets_o_negative_for_a_scheduled_request():
    assert donor_order(Component.RED_CELLS, G.O_NEG, Priority.SCHEDULED) == [G.O_NEG]


def test_the_o_negative_reserve_is_a_red_cell_rule_only():
    assert G.O_NEG in donor_order(Component.PLASMA, G.O_POS, Priority.SCHEDULED)


@pytest.mark.parametrize("component", list(Component))
@pytest.mark.parametrize("recipient", ALL)
def test_the_donor_order_lists_only_compatible_groups_each_once(component, recipient):
    order = donor_order(component, recipient, Priority.EMERGENCY, {g: i for i, g in enumerate(ALL)})
    assert len(order) == len(set(order))
    assert set(order) == set(compatible_donors(component, recipient))
    assert order[0] == recipient


@dataclass(frozen=True)
class FakeUnit:
    din: str
    blood_group: str
    expires_at: datetime
    special_attributes: tuple[str, ...] = ()
    antigen_negative: tuple[str, ...] = ()


NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def unit(din: str, group: str, days: float, *attributes: str, antigens: tuple[str, ...] = ()) -> FakeUnit:
    return FakeUnit(
        din=din,
        blood_group=group,
        expires_at=NOW + timedelta(days=days),
        special_attributes=attributes,
        antigen_negative=antigens,
    )


def wanted(units: int = 2, group: str | None = "O+", priority: str = "EMERGENCY", **kw) -> Wanted:
    """A request; ``group_confirmed`` true unless said (these tests are about the confirmed table of domain.md)."""
    return Wanted(
        component=Component(kw.pop("component", "RED_CELLS")),
        blood_group=G(group) if group else None,
        units=units,
        priority=Priority(priority),
        allow_partial=kw.pop("allow_partial", True),
        needed_by=kw.pop("needed_by", None),
        group_confirmed=kw.pop("group_confirmed", True),
        **kw,
    )


def test_fefo_takes_the_earliest_expiry_then_the_oldest_din():
    units = [unit("C", "O+", 5), unit("B", "O+", 3), unit("A", "O+", 5), unit("D", "O+", 9)]
    assert [u.din for u in choose_units(wanted(3), units, now=NOW)] == ["B", "A", "C"]
    assert sorted(units, key=fefo_key)[0].din == "B"


def test_expired_units_are_never_chosen():
    units = [unit("OLD", "O+", -0.01), unit("NEW", "O+", 4)]
    assert [u.din for u in choose_units(wanted(2), units, now=NOW)] == ["NEW"]


def test_a_scheduled_request_takes_no_unit_expiring_before_needed_by():
    units = [unit("SOON", "O+", 1), unit("LATER", "O+", 4)]
    chosen = choose_units(wanted(2, priority="SCHEDULED", needed_by=NOW + timedelta(days=2)), units, now=NOW)
    assert [u.din for u in chosen] == ["LATER"]


def test_substitutes_fill_in_after_the_identical_group():
    units = [unit("A1", "A+", 9), unit("O1", "O+", 1), unit("O2", "O+", 2), unit("N1", "O-", 1)]
    assert [u.din for u in choose_units(wanted(3, group="A+"), units, now=NOW)] == ["A1", "O1", "O2"]


def test_a_scheduled_a_plus_request_never_takes_o_negative():
    units = [unit("N1", "O-", 9), unit("A1", "A+", 9)]
    assert [u.din for u in choose_units(wanted(2, group="A+", priority="SCHEDULED"), units, now=NOW)] == ["A1"]


@pytest.mark.parametrize(
    ("found", "allow_partial", "expected"),
    [
        (2, False, "APPROVED"),
        (1, True, "PARTIAL"),
        (1, False, "INSUFFICIENT_STOCK"),
        (0, True, "NO_COMPATIBLE_UNITS"),
        (0, False, "NO_COMPATIBLE_UNITS"),
    ],
)
def test_the_outcome_follows_the_count_and_allow_partial(found, allow_partial, expected):
    assert outcome(wanted(2, allow_partial=allow_partial), found) == expected


inventories = st.lists(
    st.builds(
        FakeUnit,
        din=st.text(alphabet="0123456789", min_size=13, max_size=13),
        blood_group=st.sampled_from([g.value for g in ALL]),
        expires_at=st.integers(min_value=-48, max_value=24 * 60).map(lambda h: NOW + timedelta(hours=h)),
        special_attributes=st.lists(st.sampled_from([a.value for a in UnitAttribute]), unique=True).map(tuple),
        antigen_negative=st.lists(st.sampled_from(ANTIGENS[:4]), unique=True).map(tuple),
    ),
    max_size=60,
    unique_by=lambda u: u.din,
)
requests = st.builds(
    Wanted,
    component=st.sampled_from(list(Component)),
    blood_group=st.one_of(st.none(), st.sampled_from(ALL)),
    units=st.integers(min_value=1, max_value=20),
    priority=st.sampled_from(list(Priority)),
    allow_partial=st.booleans(),
    needed_by=st.integers(min_value=1, max_value=24 * 30).map(lambda h: NOW + timedelta(hours=h)),
    group_confirmed=st.booleans(),
    rhd_negative_required=st.booleans(),
    special_requirements=st.frozensets(st.sampled_from([r.value for r in SpecialRequirement]), max_size=2),
    antigen_negative=st.frozensets(st.sampled_from(ANTIGENS[:4]), max_size=2),
    a_plasma_requires_ht_negative=st.booleans(),
)


def unit_may_go_to(request: Wanted, u: FakeUnit) -> bool:
    """An independent statement of transfusion.md sections 5 and 6 and domain.md (not the module's tables)."""
    donor = G(u.blood_group)
    needs = {r for r in request.special_requirements if request.component in SPEC_APPLIES[r]}
    antigens = set(request.antigen_negative) if request.component in ("RED_CELLS", "WHOLE_BLOOD") else set()
    if not (needs <= set(u.special_attributes) and antigens <= set(u.antigen_negative)):
        return False
    unknown, confirmed = request.blood_group is None, request.group_confirmed and request.blood_group is not None
    if confirmed:
        return is_compatible(request.component, request.blood_group, donor)
    rhd_negative_only = request.rhd_negative_required if unknown else not request.blood_group.rhd_positive
    if request.component == Component.RED_CELLS:
        return donor.abo == "O" and (not rhd_negative_only or not donor.rhd_positive)
    if request.component == Component.PLASMA:
        if donor.abo == "A":
            return not request.a_plasma_requires_ht_negative or "HT_NEGATIVE" in u.special_attributes
        return donor.abo == "AB"
    if request.component == Component.PLATELETS:
        return not rhd_negative_only or not donor.rhd_positive
    return request.component == Component.CRYO  # any group; whole blood: none


# transfusion.md section 6, "applies to", copied.
SPEC_APPLIES = {
    "IRRADIATED": {"RED_CELLS", "PLATELETS", "WHOLE_BLOOD"},
    "CMV_NEGATIVE": {"RED_CELLS", "PLATELETS", "WHOLE_BLOOD"},
    "LEUKOREDUCED": {"RED_CELLS", "PLATELETS", "WHOLE_BLOOD", "PLASMA", "CRYO"},
    "WASHED": {"RED_CELLS", "PLATELETS"},
    "HBS_NEGATIVE": {"RED_CELLS", "WHOLE_BLOOD"},
}


@settings(max_examples=300)
@given(inventory=inventories, request=requests)
def test_choices_are_compatible_unexpired_distinct_and_never_more_than_asked(inventory, request):
    chosen = choose_units(request, inventory, now=NOW)
    assert len(chosen) <= request.units
    assert len({u.din for u in chosen}) == len(chosen)
    for u in chosen:
        assert unit_may_go_to(request, u), (request, u)
        if request.blood_group is not None and request.group_confirmed:
            assert is_compatible(request.component, request.blood_group, G(u.blood_group))
        if request.component == Component.RED_CELLS and (request.blood_group is None or not request.group_confirmed):
            assert u.blood_group in ("O-", "O+"), "a non-O red cell on an unknown or unconfirmed group"
        assert u.expires_at > NOW
        if request.priority == Priority.SCHEDULED:
            assert u.expires_at >= request.needed_by
            if request.blood_group is not None and (request.group_confirmed or not request.blood_group.rhd_positive):
                reserve_for = request.blood_group if request.group_confirmed else G.O_NEG
                assert not (
                    request.component == Component.RED_CELLS and reserve_for != G.O_NEG and u.blood_group == "O-"
                )
            elif request.blood_group is not None:
                assert not (request.component == Component.RED_CELLS and u.blood_group == "O-")
    # Within a group and requirement, FEFO: no usable unit left behind expires before a chosen unit of its group.
    needed_by = request.needed_by if request.priority == Priority.SCHEDULED else None
    left = [u for u in inventory if u not in chosen and usable(u, now=NOW, needed_by=needed_by)]
    for u in chosen:
        assert all(
            fefo_key(other) >= fefo_key(u)
            for other in left
            if other.blood_group == u.blood_group and may_receive(request, other)
        )
    # Nothing is left out that could have been taken when the request is short.
    if len(chosen) < request.units:
        assert not [u for u in left if may_receive(request, u)], "a qualifying unit was left behind"
        candidates = choose_units(replace(request, units=20, allow_partial=True), inventory, now=NOW)
        assert len(candidates) == len(chosen)
    assert compatible_count(request, inventory, now=NOW) >= len(chosen)


# -- transfusion.md section 5: unknown and unconfirmed groups --------------------------------------------
@pytest.mark.parametrize("group", ALL)
def test_an_unconfirmed_group_gets_group_o_red_cells_of_its_stated_rhd_whatever_the_group(group):
    order = donor_groups(wanted(group=group.value, group_confirmed=False))
    assert order == ([G.O_POS, G.O_NEG] if group.rhd_positive else [G.O_NEG])


def test_an_unconfirmed_rhd_positive_scheduled_request_keeps_the_o_negative_reserve():
    assert donor_groups(wanted(group="A+", group_confirmed=False, priority="SCHEDULED")) == [G.O_POS]


def test_an_unconfirmed_rhd_negative_recipient_gets_o_negative_even_when_scheduled():
    # The O-negative reserve exists for such recipients and never blocks them.
    assert donor_groups(wanted(group="B-", group_confirmed=False, priority="SCHEDULED")) == [G.O_NEG]


def test_an_unknown_group_gets_o_negative_red_cells_or_o_positive_first_when_rhd_negative_is_not_required():
    assert donor_groups(wanted(group=None, group_confirmed=False)) == [G.O_NEG]
    assert donor_groups(wanted(group=None, group_confirmed=False, rhd_negative_required=False)) == [G.O_POS, G.O_NEG]


@pytest.mark.parametrize("group", [None, *ALL])
def test_plasma_for_an_unknown_or_unconfirmed_group_is_ab_then_a(group):
    order = donor_groups(wanted(component="PLASMA", group=group.value if group else None, group_confirmed=False))
    assert [g.abo for g in order] == ["AB", "AB", "A", "A"]


def test_group_a_plasma_needs_ht_negative_for_an_unconfirmed_group_while_the_setting_says_so():
    base = wanted(component="PLASMA", group="O+", group_confirmed=False, units=3)
    units = [unit("A1", "A+", 5), unit("A2", "A-", 6, "HT_NEGATIVE"), unit("AB1", "AB+", 9)]
    assert [u.din for u in choose_units(base, units, now=NOW)] == ["AB1", "A2"]
    assert group_attributes(base, G.A_POS) == {"HT_NEGATIVE"}
    assert group_attributes(base, G.AB_POS) == frozenset()
    relaxed = replace(base, a_plasma_requires_ht_negative=False)
    assert len(choose_units(relaxed, units, now=NOW)) == 3
    confirmed = replace(base, group_confirmed=True)  # a confirmed O recipient takes any plasma, no HT rule
    assert group_attributes(confirmed, G.A_POS) == frozenset()


def test_platelets_for_an_unknown_group_are_any_abo_ab_first_rhd_negative_while_required():
    order = donor_groups(wanted(component="PLATELETS", group=None, group_confirmed=False))
    assert order == [G.AB_NEG, G.A_NEG, G.B_NEG, G.O_NEG]
    order = donor_groups(wanted(component="PLATELETS", group=None, group_confirmed=False, rhd_negative_required=False))
    assert order == [G.AB_POS, G.AB_NEG, G.A_POS, G.A_NEG, G.B_POS, G.B_NEG, G.O_POS, G.O_NEG]


def test_platelets_for_an_unconfirmed_group_follow_its_stated_rhd():
    assert all(
        not g.rhd_positive for g in donor_groups(wanted(component="PLATELETS", group="A-", group_confirmed=False))
    )
    assert len(donor_groups(wanted(component="PLATELETS", group="A+", group_confirmed=False))) == 8


@pytest.mark.parametrize("group", [None, "A+", "O-"])
def test_cryo_is_any_group_whatever_is_known(group):
    assert set(donor_groups(wanted(component="CRYO", group=group, group_confirmed=False))) == set(ALL)


@pytest.mark.parametrize("group", [None, "A+"])
def test_whole_blood_has_no_donor_for_an_unknown_or_unconfirmed_group(group):
    assert donor_groups(wanted(component="WHOLE_BLOOD", group=group, group_confirmed=False)) == []


def test_a_confirmed_group_opens_the_full_table():
    order = donor_groups(wanted(group="A+", group_confirmed=True, priority="SCHEDULED"))
    assert order[0] == G.A_POS and set(order) == {G.A_POS, G.A_NEG, G.O_POS}


def test_wanted_defaults_to_an_unconfirmed_group():
    plain = Wanted(Component.RED_CELLS, G.AB_POS, 1, Priority.EMERGENCY, True)
    assert plain.restricted and donor_groups(plain) == [G.O_POS, G.O_NEG]


# -- transfusion.md section 6: special requirements ------------------------------------------------------
@pytest.mark.parametrize("requirement", list(SpecialRequirement))
@pytest.mark.parametrize("component", list(Component))
def test_a_requirement_applies_only_to_the_components_of_its_table_row(requirement, component):
    expected = {requirement.value} if component.value in SPEC_APPLIES[requirement.value] else set()
    assert required_attributes(component, [requirement.value]) == expected


@pytest.mark.parametrize("component", list(Component))
def test_antigen_negative_matching_applies_to_red_cells_and_whole_blood(component):
    expected = {"K"} if component in (Component.RED_CELLS, Component.WHOLE_BLOOD) else set()
    assert required_antigens(component, ["K"]) == expected


def test_an_unknown_antigen_is_refused():
    with pytest.raises(ValueError, match="unknown antigens"):
        required_antigens(Component.RED_CELLS, ["k", "X"])


def test_antigens_are_case_sensitive():
    request = wanted(group="O+", antigen_negative=frozenset({"k"}))
    assert [
        u.din
        for u in choose_units(
            request, [unit("BIG", "O+", 2, antigens=("K",)), unit("small", "O+", 3, antigens=("k",))], now=NOW
        )
    ] == ["small"]


def test_a_k_negative_irradiated_request_takes_only_units_carrying_both():
    request = wanted(
        units=3, group="O+", special_requirements=frozenset({"IRRADIATED"}), antigen_negative=frozenset({"K"})
    )
    units = [
        unit("IRR", "O+", 1, "IRRADIATED"),
        unit("KNEG", "O+", 2, antigens=("K",)),
        unit("BOTH", "O+", 3, "IRRADIATED", "LEUKOREDUCED", antigens=("K", "E")),
        unit("BOTH-", "O-", 3, "IRRADIATED", antigens=("K",)),
    ]
    assert [u.din for u in choose_units(request, units, now=NOW)] == ["BOTH", "BOTH-"]


def test_the_plasma_of_an_irradiated_request_needs_no_irradiation():
    request = wanted(component="PLASMA", group="A+", special_requirements=frozenset({"IRRADIATED"}))
    assert len(choose_units(request, [unit("P", "A+", 30)], now=NOW)) == 1


@pytest.mark.parametrize(
    ("found", "compatible", "allow_partial", "expected"),
    [
        (0, 4, False, "NO_UNITS_MEETING_REQUIREMENTS"),
        (0, 4, True, "NO_UNITS_MEETING_REQUIREMENTS"),
        (1, 4, True, "PARTIAL"),
        (1, 4, False, "NO_UNITS_MEETING_REQUIREMENTS"),
        (1, 1, False, "INSUFFICIENT_STOCK"),
        (0, 0, True, "NO_COMPATIBLE_UNITS"),
        (2, 9, False, "APPROVED"),
    ],
)
def test_requirements_that_leave_compatible_units_unused_have_their_own_reason(
    found, compatible, allow_partial, expected
):
    assert outcome(wanted(2, allow_partial=allow_partial), found, compatible) == expected


# -- validation (sections 5 and 7) ----------------------------------------------------------------------
def shape(**kw) -> RequestShape:
    base = {
        "protocol": "STANDARD",
        "blood_group": "O+",
        "component": "RED_CELLS",
        "units": 2,
        "priority": "EMERGENCY",
        "allow_partial": True,
        "authorised_by": "",
        "group_confirmed": False,
    }
    return RequestShape(**(base | kw))


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"blood_group": "UNKNOWN", "authorised_by": "dr_khan"}, None),
        ({"blood_group": "UNKNOWN"}, "authorised_by"),
        ({"blood_group": "UNKNOWN", "authorised_by": "dr_khan", "priority": "SCHEDULED"}, "EMERGENCY"),
        ({"blood_group": "UNKNOWN", "authorised_by": "dr_khan", "allow_partial": False}, "allow_partial"),
        ({"blood_group": "UNKNOWN", "authorised_by": "dr_khan", "component": "WHOLE_BLOOD"}, "whole blood"),
        ({"component": "WHOLE_BLOOD"}, "confirmed"),
        ({"component": "WHOLE_BLOOD", "group_confirmed": True}, None),
        ({"protocol": "MTP", "component": None, "units": None, "authorised_by": "dr_khan"}, None),
        ({"protocol": "MTP", "component": None, "units": None}, "authorised_by"),
        (
            {"protocol": "MTP", "component": None, "units": None, "authorised_by": "x", "priority": "SCHEDULED"},
            "EMERGENCY",
        ),
        ({"protocol": "MTP", "authorised_by": "dr_khan"}, "no component"),
        ({"units": 21}, "units"),
        ({"antigen_negative": ("X",)}, "antigen"),
        ({"special_requirements": ("GOLD",)}, "special requirement"),
        ({"blood_group": "C+"}, "blood group"),
    ],
)
def test_invalid_combinations_are_named(fields, problem):
    found = invalid_reason(shape(**fields))
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_mtp_packs_follow_the_recipe_with_platelets_from_pack_two():
    recipe = PackRecipe()
    assert recipe.contents(1) == [(Component.RED_CELLS, 4), (Component.PLASMA, 4)]
    assert recipe.contents(2) == [(Component.RED_CELLS, 4), (Component.PLASMA, 4), (Component.PLATELETS, 1)]
    assert PackRecipe(platelets=0).contents(3) == [(Component.RED_CELLS, 4), (Component.PLASMA, 4)]


@pytest.mark.parametrize(
    "request_",
    [
        wanted(group="A+", group_confirmed=False),
        wanted(group="A+", group_confirmed=True),
        wanted(group=None, group_confirmed=False, special_requirements=frozenset({"CMV_NEGATIVE"})),
        wanted(component="PLASMA", group=None, group_confirmed=False),
    ],
)
def test_the_fast_path_step_is_the_first_of_the_plan(request_):
    first = first_choice(request_)
    plan = donor_plan(request_)
    assert first is None or first == plan[0]
