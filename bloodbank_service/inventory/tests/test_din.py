"""ISBT 128 DIN check characters (ISO/IEC 7064 MOD 37-2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inventory.din import InvalidDIN, check_character, make_din, normalize_din

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"


def test_the_published_example_has_check_character_h():
    # UK Red Book, annex 2: donation number G123 498 654 321 -> H.
    assert check_character("G123498654321") == "H"


def test_a_din_with_its_check_character_is_accepted_and_stored_without_it():
    assert normalize_din("G123498654321H") == "G123498654321"
    assert normalize_din(" g123498654321h ") == "G123498654321"


def test_a_din_without_a_check_character_is_accepted():
    assert normalize_din("A999926123456") == "A999926123456"


def test_a_wrong_check_character_is_refused():
    with pytest.raises(InvalidDIN, match="check character"):
        normalize_din("G123498654321J")


@pytest.mark.parametrize(
    "text", ["", "G12349865432", "G1234986543211X2", "GG23498654321", "G123A98654321", "*123498654321"]
)
def test_malformed_dins_are_refused(text):
    with pytest.raises(InvalidDIN):
        normalize_din(text)


dins = st.builds(
    lambda facility, number, year, seq: make_din(f"{facility}{number:04d}", year, seq),
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
    st.integers(0, 9999),
    st.integers(0, 99),
    st.integers(0, 999999),
)


@given(din=dins)
def test_every_din_validates_with_its_own_check_character(din):
    assert normalize_din(din + check_character(din)) == din


@given(din=dins, position=st.integers(0, 12), data=st.data())
def test_any_single_corrupted_character_is_detected(din, position, data):
    check = check_character(din)
    replacement = data.draw(st.sampled_from([c for c in "0123456789" if c != din[position]]))
    corrupted = din[:position] + replacement + din[position + 1 :]
    assert check_character(corrupted) != check


@given(din=dins, position=st.integers(0, 11))
def test_swapping_two_adjacent_different_characters_is_detected(din, position):
    if din[position] == din[position + 1]:
        return
    swapped = din[:position] + din[position + 1] + din[position] + din[position + 2 :]
    assert check_character(swapped) != check_character(din)


@given(din=dins, check=st.sampled_from(ALPHABET))
def test_only_the_right_check_character_is_accepted(din, check):
    if check == check_character(din):
        assert normalize_din(din + check) == din
    else:
        with pytest.raises(InvalidDIN):
            normalize_din(din + check)
