"""Who hears about dispatch, receipt, fates, overdue fates and recalls, and how loudly (pure rules)."""

import uuid
from datetime import UTC, datetime

from notifications.rules import plan_notifications
from shared_events import topics
from shared_events.demo import BANK_AUDIENCE

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HOSPITAL = uuid.uuid4()
OTHER = uuid.uuid4()
UNIT = {
    "unit_id": str(uuid.uuid4()),
    "din": "A999926000001",
    "component": "RED_CELLS",
    "blood_group": "O-",
    "expires_at": "2026-12-20T00:00:00Z",
}


def _plan(event_type: str, payload: dict):
    model = topics.TOPICS[event_type].payloads[1]
    return plan_notifications(event_type=event_type, data=model.model_validate(payload), occurred_at=NOW)


def test_a_dispatch_tells_the_hospital_and_a_receipt_tells_the_bank():
    request_id = str(uuid.uuid4())
    [dispatched] = _plan(
        topics.UNITS_DISPATCHED,
        {
            "request_id": request_id,
            "hospital_id": str(HOSPITAL),
            "units": [UNIT],
            "dispatched_by": "bank_admin",
            "dispatched_at": NOW.isoformat(),
        },
    )
    assert (dispatched.audience, dispatched.kind, dispatched.severity) == (
        f"hospital:{HOSPITAL}",
        "UNITS_DISPATCHED",
        "INFO",
    )
    assert UNIT["din"] in dispatched.body
    [received] = _plan(
        topics.UNITS_RECEIVED,
        {
            "request_id": request_id,
            "hospital_id": str(HOSPITAL),
            "dins": [UNIT["din"]],
            "received_by": "nurse",
            "received_at": NOW.isoformat(),
        },
    )
    assert (received.audience, received.kind, received.severity) == (BANK_AUDIENCE, "UNITS_RECEIVED", "INFO")


def test_only_an_adverse_reaction_among_fates_notifies_the_bank():
    fate = {
        "request_id": str(uuid.uuid4()),
        "hospital_id": str(HOSPITAL),
        "unit": UNIT,
        "fate": "TRANSFUSED",
        "recorded_by": "nurse",
        "recorded_at": NOW.isoformat(),
        "patient_reference": "MRN-1",
        "started_at": NOW.isoformat(),
    }
    assert _plan(topics.UNIT_FATE, fate) == []
    assert _plan(topics.UNIT_FATE, {**fate, "fate": "WASTED", "reason": "DAMAGED", "patient_reference": None}) == []
    [reaction] = _plan(topics.UNIT_FATE, fate | {"adverse_reaction": True})
    assert (reaction.audience, reaction.kind, reaction.severity) == (BANK_AUDIENCE, "ADVERSE_REACTION", "WARNING")
    assert "MRN-1" not in reaction.body  # the recipient's reference stays out of notifications


def test_overdue_fates_warn_that_hospital():
    [overdue] = _plan(
        topics.FATE_OVERDUE,
        {
            "hospital_id": str(HOSPITAL),
            "overdue_after_hours": 72,
            "as_of": NOW.isoformat(),
            "units": [UNIT | {"request_id": str(uuid.uuid4()), "dispatched_at": NOW.isoformat()}],
        },
    )
    assert (overdue.audience, overdue.kind, overdue.severity) == (f"hospital:{HOSPITAL}", "FATE_OVERDUE", "WARNING")


def test_a_recall_is_critical_for_the_bank_and_each_listed_hospital():
    listed = UNIT | {"request_id": str(uuid.uuid4()), "bank_status": "ISSUED"}
    plans = _plan(
        topics.RECALL_ISSUED,
        {
            "recall_id": str(uuid.uuid4()),
            "reason": "DONOR_INFECTION",
            "severity": "HIGH",
            "dins": [UNIT["din"]],
            "hospitals": [
                {"hospital_id": str(HOSPITAL), "units": [listed]},
                {"hospital_id": str(OTHER), "units": [listed]},
            ],
            "issued_by": "bank_admin",
            "issued_at": NOW.isoformat(),
        },
    )
    assert {(p.audience, p.kind, p.severity) for p in plans} == {
        (BANK_AUDIENCE, "RECALL_ISSUED", "CRITICAL"),
        (f"hospital:{HOSPITAL}", "RECALL_ISSUED", "CRITICAL"),
        (f"hospital:{OTHER}", "RECALL_ISSUED", "CRITICAL"),
    }


def test_a_recall_answer_warns_the_bank_when_a_recalled_unit_was_transfused():
    answer = {
        "recall_id": str(uuid.uuid4()),
        "hospital_id": str(HOSPITAL),
        "acknowledged_by": "system",
        "acknowledged_at": NOW.isoformat(),
    }
    quarantined = {"unit_id": UNIT["unit_id"], "din": UNIT["din"], "state": "QUARANTINED_HERE"}
    [calm] = _plan(topics.RECALL_ACKNOWLEDGED, answer | {"units": [quarantined]})
    assert (calm.audience, calm.severity) == (BANK_AUDIENCE, "INFO")
    transfused = quarantined | {"state": "TRANSFUSED", "patient_reference": "MRN-9", "started_at": NOW.isoformat()}
    [loud] = _plan(topics.RECALL_ACKNOWLEDGED, answer | {"units": [transfused]})
    assert (loud.kind, loud.severity) == ("RECALL_ACKNOWLEDGED", "WARNING")
    assert "MRN-9" not in loud.body
