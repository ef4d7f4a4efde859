"""The pure traceability tables: trace steps of history rows, recall outcomes, the unit lifecycle."""

import pytest
from inventory.lifecycle import FINAL, UNIT_TRANSITIONS, Step, can_move, display_actor, step_of

from traceability.rules import ACCOUNTED, bank_outcome


@pytest.mark.parametrize(
    ("from_status", "to_status", "step"),
    [
        ("", "AVAILABLE", Step.RECEIVED_AT_BANK),
        ("AVAILABLE", "ALLOCATED", Step.ALLOCATED),
        ("ALLOCATED", "AVAILABLE", Step.RELEASED),
        ("ALLOCATED", "EXPIRED", Step.RELEASED),
        ("QUARANTINED", "AVAILABLE", Step.RESTOCKED),
        ("AVAILABLE", "QUARANTINED", Step.QUARANTINED),
        ("QUARANTINED", "DISCARDED", Step.DISCARDED),
        ("AVAILABLE", "EXPIRED", Step.EXPIRED),
    ],
)
def test_rows_written_before_steps_get_theirs_from_the_statuses(from_status, to_status, step):
    assert step_of(from_status=from_status, to_status=to_status) == step


def test_a_recorded_step_wins_and_system_actors_read_system():
    assert (
        step_of(from_status="ISSUED", to_status="ISSUED", recorded_step="RECEIVED_BY_HOSPITAL")
        == "RECEIVED_BY_HOSPITAL"
    )
    assert (display_actor("system:allocation"), display_actor("hospital:nurse"), display_actor("bank_clerk")) == (
        "system",
        "nurse",
        "bank_clerk",
    )


def test_issued_units_leave_only_by_a_fate_and_final_statuses_are_final():
    assert UNIT_TRANSITIONS["ISSUED"] == {"TRANSFUSED", "WASTED", "QUARANTINED"}
    assert not can_move("ISSUED", "AVAILABLE")  # never back on the shelf by a cancel
    assert set(FINAL) == {"DISCARDED", "TRANSFUSED", "WASTED"}


@pytest.mark.parametrize(
    ("status", "issued", "outcome"),
    [
        ("AVAILABLE", False, "QUARANTINED_AT_BANK"),
        ("ALLOCATED", False, "QUARANTINED_AT_BANK"),
        ("QUARANTINED", False, "QUARANTINED_AT_BANK"),  # e.g. returned, awaiting inspection
        ("EXPIRED", False, "DISCARDED_AT_BANK"),
        ("DISCARDED", False, "DISCARDED_AT_BANK"),
        ("WASTED", False, "DISCARDED_AT_BANK"),  # a return the bank wasted
        ("ISSUED", True, None),
        ("TRANSFUSED", True, None),
        ("WASTED", True, None),
    ],
)
def test_what_the_bank_answers_itself_for_a_recalled_unit(status, issued, outcome):
    assert bank_outcome(status=status, issued=issued) == outcome
    assert outcome is None or outcome in ACCOUNTED
