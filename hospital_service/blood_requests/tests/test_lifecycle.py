"""The pure rules: the request state machine and the watchdog's back-off."""

from datetime import UTC, datetime, timedelta

import pytest

from blood_requests.lifecycle import (
    InvalidTransition,
    PackStatus,
    RequestStatus,
    can_pack_transition,
    can_transition,
    ensure_pack_transition,
    ensure_transition,
    is_opaque_patient_reference,
    mtp_outcome,
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
    (S.PENDING, S.MTP_ACTIVE),  # an MTP request, from its pack 1's decision (or dispatch)
    (S.MTP_ACTIVE, S.FULFILLED),  # stopped, every dispatched pack received
    (S.MTP_ACTIVE, S.CANCELLED),  # stopped before any pack was dispatched
}
P = PackStatus
_DECIDED = {P.APPROVED, P.PARTIALLY_APPROVED, P.REJECTED, P.DISPATCHED}
PACK_ALLOWED = {
    *((P.REQUESTED, target) for target in (*_DECIDED, P.STOPPED)),
    *((P.STOPPED, target) for target in _DECIDED),  # decided before the bank saw the stop
    (P.APPROVED, P.DISPATCHED),
    (P.APPROVED, P.RELEASED),
    (P.PARTIALLY_APPROVED, P.DISPATCHED),
    (P.PARTIALLY_APPROVED, P.RELEASED),
    (P.DISPATCHED, P.RECEIVED),
}


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_only_the_documented_transitions_are_allowed(current, target):
    assert can_transition(current, target) == ((current, target) in ALLOWED)
    if (current, target) not in ALLOWED:
        with pytest.raises(InvalidTransition):
            ensure_transition(current, target)


@pytest.mark.parametrize("current", list(P))
@pytest.mark.parametrize("target", list(P))
def test_only_the_documented_pack_transitions_are_allowed(current, target):
    assert can_pack_transition(current, target) == ((current, target) in PACK_ALLOWED)
    if (current, target) not in PACK_ALLOWED:
        with pytest.raises(InvalidTransition):
            ensure_pack_transition(current, target)


@pytest.mark.parametrize(
    ("packs", "outcome"),
    [
        ([P.RECEIVED, P.RECEIVED, P.RELEASED], S.FULFILLED),
        ([P.RECEIVED, P.DISPATCHED], None),  # a pack is on its way: wait for its receipt
        ([P.DISPATCHED], None),
        ([P.RELEASED], S.CANCELLED),  # nothing ever reached the patient
        ([P.STOPPED], S.CANCELLED),
        ([P.REJECTED, P.STOPPED], S.CANCELLED),
        ([P.RECEIVED, P.REJECTED, P.STOPPED], S.FULFILLED),
    ],
)
def test_a_stopped_mtp_ends_fulfilled_once_every_dispatched_pack_is_received_else_cancelled(packs, outcome):
    assert mtp_outcome(pack_statuses=[p.value for p in packs]) == outcome


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
