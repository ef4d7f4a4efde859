"""The pure rules: the request state machine and the watchdog's back-off."""

from datetime import UTC, datetime, timedelta

import pytest

from blood_requests.lifecycle import (
    InvalidTransition,
    RequestStatus,
    can_transition,
    ensure_transition,
    is_opaque_patient_reference,
    republish_delay,
)

S = RequestStatus
ALLOWED = {
    (S.PENDING, S.APPROVED),
    (S.PENDING, S.PARTIALLY_APPROVED),
    (S.PENDING, S.REJECTED),
    (S.PENDING, S.CANCELLED),
    (S.PENDING, S.DISPATCHED),  # the dispatch overtook the approval (another topic)
    (S.APPROVED, S.DISPATCHED),
    (S.APPROVED, S.CANCELLED),
    (S.PARTIALLY_APPROVED, S.DISPATCHED),
    (S.PARTIALLY_APPROVED, S.CANCELLED),
    (S.DISPATCHED, S.FULFILLED),
    (S.DISPATCHED, S.CANCELLED),
}


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_only_the_documented_transitions_are_allowed(current, target):
    assert can_transition(current, target) == ((current, target) in ALLOWED)
    if (current, target) not in ALLOWED:
        with pytest.raises(InvalidTransition):
            ensure_transition(current, target)


def test_the_watchdog_backs_off_by_doubling_up_to_the_cap():
    delays = [republish_delay(times_published=n, base_seconds=60, cap_seconds=600).total_seconds() for n in range(1, 8)]
    assert delays == [60, 120, 240, 480, 600, 600, 600]


def test_the_back_off_never_overflows_on_a_long_outage():
    assert republish_delay(times_published=10_000, base_seconds=60, cap_seconds=900) == timedelta(seconds=900)
    assert datetime(2026, 1, 1, tzinfo=UTC) + republish_delay(times_published=10_000, base_seconds=1, cap_seconds=5)


@pytest.mark.parametrize("value", ["MRN-0042", "ward7:bed3", "a", "X" * 64, "2026/11/29#4"])
def test_opaque_patient_references_are_accepted(value):
    assert is_opaque_patient_reference(value)


@pytest.mark.parametrize("value", ["John Smith", "", " MRN", "X" * 65, "Ångström"])
def test_names_and_long_values_are_not_patient_references(value):
    assert not is_opaque_patient_reference(value)
