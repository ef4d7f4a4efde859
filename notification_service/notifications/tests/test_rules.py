"""The notification policy, event by event: audience, kind, severity and the words staff read."""

import json
import uuid

import pytest

from notifications.rules import RequestFacts, escalation_text, plan_notifications, product_text
from notifications.tests import factories
from notifications.tests.factories import CITY_GENERAL, ST_MARY
from shared_events.envelope import parse_event

BANK = "bloodbank"


def _plan(event, request=None, hospitals=()):
    return plan_notifications(
        event_type=event.type, data=event.data, occurred_at=event.time, request=request, hospital_audiences=hospitals
    )


def _by_audience(plans):
    return {p.audience: p for p in plans}


def _facts(request_id, priority="EMERGENCY"):
    return RequestFacts(
        request_id=request_id,
        hospital_id=ST_MARY.id,
        hospital_name=ST_MARY.name,
        blood_group="O+",
        component="RED_CELLS",
        units=2,
        priority=priority,
    )


def test_an_emergency_request_tells_the_hospital_and_raises_a_critical_alert_at_the_bank():
    event = factories.requested()
    plans = _by_audience(_plan(event))
    assert set(plans) == {ST_MARY.audience, BANK}
    hospital, bank = plans[ST_MARY.audience], plans[BANK]
    assert (hospital.kind, hospital.severity) == ("REQUEST_CREATED", "INFO")
    assert (bank.kind, bank.severity) == ("REQUEST_CREATED", "CRITICAL")
    assert bank.title == "EMERGENCY request: 2 units O+ red cells for St Mary's Hospital"
    assert "needed now" in bank.body and str(event.data.request_id)[:8] in bank.body
    assert hospital.title == "Request sent: 2 units O+ red cells (EMERGENCY)"
    assert {p.request_id for p in plans.values()} == {event.data.request_id}
    assert {(p.component, p.blood_group) for p in plans.values()} == {("RED_CELLS", "O+")}


def test_a_scheduled_request_is_information_for_the_bank_with_its_deadline():
    bank = _by_audience(_plan(factories.requested(priority="SCHEDULED", units=1)))[BANK]
    assert bank.severity == "INFO"
    assert bank.title.startswith("Scheduled request: 1 unit O+ red cells")
    assert "needed by" in bank.body and "all units or none" in bank.body


def test_no_patient_reference_ever_appears_in_a_text():
    plans = _plan(factories.requested(patient_reference="PT-SECRET-7"))
    assert all("PT-SECRET-7" not in p.title + p.body for p in plans)


def test_an_approval_reads_as_units_group_and_component_for_the_requesting_hospital_only():
    request_id = uuid.uuid4()
    (plan,) = _plan(factories.approved(request_id=request_id), request=_facts(request_id))
    assert plan.audience == ST_MARY.audience
    assert (plan.kind, plan.severity) == ("REQUEST_APPROVED", "INFO")
    assert plan.title == "Approved: 2 units O+ red cells"
    assert plan.body.startswith(f"2 units O+ red cells approved for request {str(request_id)[:8]}")
    assert plan.request_id == request_id


def test_an_approval_names_compatible_substitutes():
    request_id = uuid.uuid4()
    (plan,) = _plan(factories.approved(request_id=request_id, groups=("O+", "O-")), request=_facts(request_id))
    assert "Compatible substitutes: 1 unit O-." in plan.body


def test_an_approval_before_the_request_was_seen_still_makes_sense():
    request_id = uuid.uuid4()
    (plan,) = _plan(factories.approved(request_id=request_id))
    assert plan.title == "Approved: 2 units O+ red cells"


def test_a_partial_supply_is_a_warning_saying_how_many_of_how_many():
    request_id = uuid.uuid4()
    (plan,) = _plan(factories.approved(request_id=request_id, groups=("O+",)), request=_facts(request_id))
    assert (plan.kind, plan.severity) == ("REQUEST_PARTIALLY_APPROVED", "WARNING")
    assert plan.title == "Partly approved: 1 of 2 units O+ red cells"
    assert "Only 1 of 2 units O+ red cells" in plan.body


@pytest.mark.parametrize(
    ("priority", "reason", "severity"),
    [
        ("EMERGENCY", "INSUFFICIENT_STOCK", "CRITICAL"),
        ("SCHEDULED", "NO_COMPATIBLE_UNITS", "WARNING"),
        ("EMERGENCY", "CANCELLED_BEFORE_DECISION", "INFO"),
    ],
)
def test_a_rejection_is_critical_for_an_emergency_and_says_why(priority, reason, severity):
    request_id = uuid.uuid4()
    (plan,) = _plan(factories.rejected(request_id=request_id, reason_code=reason), request=_facts(request_id, priority))
    assert (plan.audience, plan.kind, plan.severity) == (ST_MARY.audience, "REQUEST_REJECTED", severity)
    assert plan.title == "Rejected: 2 units O+ red cells"
    assert "was rejected:" in plan.body


def test_a_cancellation_tells_the_hospital_and_the_bank():
    request_id = uuid.uuid4()
    plans = _by_audience(_plan(factories.cancelled(request_id=request_id), request=_facts(request_id)))
    assert set(plans) == {ST_MARY.audience, BANK}
    assert {(p.kind, p.severity) for p in plans.values()} == {("REQUEST_CANCELLED", "INFO")}
    assert plans[BANK].title == "Cancelled by St Mary's Hospital: 2 units O+ red cells"
    assert plans[ST_MARY.audience].body.endswith("Reason: not required.")


def test_a_release_tells_the_hospital_not_to_expect_the_units():
    request_id = uuid.uuid4()
    (plan,) = _plan(factories.released(request_id=request_id, units=3), request=_facts(request_id))
    assert (plan.audience, plan.kind, plan.severity) == (ST_MARY.audience, "ALLOCATION_RELEASED", "INFO")
    assert plan.title.startswith("Released: 3 units O+ red cells")


def test_an_inventory_update_is_a_coalesced_notice_for_the_bank_only():
    (plan,) = _plan(factories.inventory_updated(available=12), hospitals=[ST_MARY.audience])
    assert (plan.audience, plan.kind, plan.severity, plan.coalesce) == (BANK, "INVENTORY_UPDATED", "INFO", True)
    assert plan.title == "Stock O+ red cells: 12 units available"
    (critical,) = _plan(factories.inventory_updated(available=2, level="CRITICAL"))
    assert critical.severity == "WARNING"  # the crossing (low_stock) carries the critical alarm


@pytest.mark.parametrize(
    ("level", "kind", "severity", "title"),
    [
        ("LOW", "STOCK_LOW", "WARNING", "Low stock: A- platelets"),
        ("CRITICAL", "STOCK_CRITICAL", "CRITICAL", "CRITICAL stock: A- platelets"),
        ("RECOVERED", "STOCK_RECOVERED", "INFO", "Stock recovered: A- platelets"),
    ],
)
def test_a_stock_crossing_reaches_the_bank_and_every_hospital(level, kind, severity, title):
    event = factories.low_stock(level=level, available=3, group="A-", component="PLATELETS")
    plans = _by_audience(_plan(event, hospitals=[ST_MARY.audience, CITY_GENERAL.audience, ST_MARY.audience]))
    assert set(plans) == {BANK, ST_MARY.audience, CITY_GENERAL.audience}
    assert {(p.kind, p.severity, p.title) for p in plans.values()} == {(kind, severity, title)}
    assert {(p.component, p.blood_group) for p in plans.values()} == {("PLATELETS", "A-")}
    assert all(p.request_id is None for p in plans.values())


def test_component_names_are_the_words_staff_use():
    assert product_text("AB-", "CRYO") == "AB- cryoprecipitate"
    assert product_text("B+", "WHOLE_BLOOD") == "B+ whole blood"


def test_escalation_text_says_how_long_it_waited():
    assert escalation_text(title="X", unread_for_seconds=300)[1].startswith(
        "This critical alert has not been read for 5 minutes"
    )
    assert escalation_text(title="X", unread_for_seconds=30)[0] == "Still unread: X"


def _as_an_older_producer_sent_it(event, **extra):
    """The event's bytes with fields an older producer added (``reason`` free text), parsed again."""
    envelope = json.loads(event.envelope.to_bytes())
    envelope["data"] |= extra
    return parse_event(json.dumps(envelope).encode())


def test_free_text_an_older_producer_still_sends_never_reaches_a_notification():
    note = "Patient John Smith DOB 1970-01-01 NHS 943 476 5919"
    request_id = uuid.uuid4()
    requested = factories.requested(request_id=request_id, indication="OBSTETRIC_HAEMORRHAGE")
    cancelled = factories.cancelled(request_id=request_id)
    plans = [
        *_plan(_as_an_older_producer_sent_it(requested, reason=note)),
        *_plan(_as_an_older_producer_sent_it(cancelled, reason=note), request=_facts(request_id)),
    ]
    assert len(plans) == 4
    assert [p for p in plans if "Smith" in p.title + p.body or "1970-01-01" in p.title + p.body] == []
    bank = next(p for p in plans if p.audience == BANK and p.kind == "REQUEST_CREATED")
    assert "Indication: obstetric haemorrhage." in bank.body


def test_the_authorising_clinician_a_hospital_wrote_never_reaches_a_notification():
    """authorised_by is the one text field of a request that travels (to the bank); notifications never show it."""
    written = "Patient John Smith DOB 1970-01-01"
    plans = _plan(factories.requested(blood_group="UNKNOWN", authorised_by=written, group_confirmed=False))
    assert len(plans) == 2
    assert [p for p in plans if "Smith" in p.title + p.body or "1970" in p.title + p.body] == []
    assert all("Authorised by a clinician." in p.body for p in plans if p.audience == BANK)
