"""The compatibility tables and allocation order of domain.md, entry by entry (pure, no database)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allocation.compatibility import (
    Wanted,
    choose_units,
    compatible_donors,
    donor_order,
    fefo_key,
    is_compatible,
    outcome,
    usable,
)
from shared_events.enums import BloodGroup, Component, Priority

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


def test_the_identical_group_comes_first_then_the_most_plentiful_substitute():
    order = donor_order(Component.RED_CELLS, G.A_POS, Priority.EMERGENCY, {G.A_NEG: 9, G.O_POS: 3, G.O_NEG: 50})
    assert order == [G.A_POS, G.A_NEG, G.O_POS, G.O_NEG]


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


NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def unit(din: str, group: str, days: float) -> FakeUnit:
    return FakeUnit(din=din, blood_group=group, expires_at=NOW + timedelta(days=days))


def wanted(units: int = 2, group: str = "O+", priority: str = "EMERGENCY", **kw) -> Wanted:
    return Wanted(
        component=Component(kw.pop("component", "RED_CELLS")),
        blood_group=G(group),
        units=units,
        priority=Priority(priority),
        allow_partial=kw.pop("allow_partial", True),
        needed_by=kw.pop("needed_by", None),
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
    ),
    max_size=60,
    unique_by=lambda u: u.din,
)
requests = st.builds(
    Wanted,
    component=st.sampled_from(list(Component)),
    blood_group=st.sampled_from(ALL),
    units=st.integers(min_value=1, max_value=20),
    priority=st.sampled_from(list(Priority)),
    allow_partial=st.booleans(),
    needed_by=st.integers(min_value=1, max_value=24 * 30).map(lambda h: NOW + timedelta(hours=h)),
)


@given(inventory=inventories, request=requests)
def test_choices_are_compatible_unexpired_distinct_and_never_more_than_asked(inventory, request):
    chosen = choose_units(request, inventory, now=NOW)
    assert len(chosen) <= request.units
    assert len({u.din for u in chosen}) == len(chosen)
    for u in chosen:
        assert is_compatible(request.component, request.blood_group, G(u.blood_group))
        assert u.expires_at > NOW
        if request.priority == Priority.SCHEDULED:
            assert u.expires_at >= request.needed_by
            assert not (
                request.component == Component.RED_CELLS and request.blood_group != G.O_NEG and u.blood_group == "O-"
            )
    # Within a group, FEFO: no usable unit left behind expires before a chosen unit of its group.
    needed_by = request.needed_by if request.priority == Priority.SCHEDULED else None
    left = [u for u in inventory if u not in chosen and usable(u, now=NOW, needed_by=needed_by)]
    for u in chosen:
        assert all(fefo_key(other) >= fefo_key(u) for other in left if other.blood_group == u.blood_group)
    # Nothing is left out that could have been taken when the request is short.
    if len(chosen) < request.units:
        candidates = choose_units(
            Wanted(request.component, request.blood_group, 20, request.priority, True, request.needed_by),
            inventory,
            now=NOW,
        )
        assert len(candidates) == len(chosen)
