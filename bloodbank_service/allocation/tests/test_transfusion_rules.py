"""transfusion.md sections 5-7 at the bank, on PostgreSQL: emergency release, the confirmed-group rule,
special requirements and MTP packs, through the handlers as the consumer runs them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from conftest import cancelled_payload, make_event
from django.db import transaction
from inventory.models import Unit, UnitStatus
from traceability.services import dispatch_request

from allocation.handlers import HANDLERS
from allocation.models import Allocation, BankRequest, MtpPack, RequestStatus
from allocation.services import RefusedEvent, decide_waiting_requests, receive_blood_request
from shared_events import topics
from shared_events.django.models import OutboxEvent
from shared_events.envelope import parse_event
from shared_events.schemas import BloodRequestedV1
from shared_events.testing import requested_payload

pytestmark = pytest.mark.django_db


def handle(event_type: str, payload: dict) -> None:
    with transaction.atomic():
        HANDLERS[event_type](make_event(event_type, payload))


def decide(**overrides) -> BankRequest:
    """Send a request and, if it waits (SCHEDULED), run the deferred decision step."""
    payload = requested_payload(**overrides)
    handle(topics.REQUESTED, payload)
    decide_waiting_requests()
    return BankRequest.objects.get(pk=payload["request_id"])


def groups_of(bank_request: BankRequest, component: str | None = None) -> list[str]:
    allocations = bank_request.allocations.order_by("id")
    if component:
        allocations = allocations.filter(unit__component=component)
    return list(allocations.values_list("unit__blood_group", flat=True))


def decisions(request_id) -> list:
    rows = OutboxEvent.objects.filter(key=str(request_id), event_type__in=[topics.APPROVED, topics.REJECTED])
    return [parse_event(bytes(row.value)) for row in rows.order_by("id")]


def mtp_payload(**overrides) -> dict:
    fields = {"protocol": "MTP", "blood_group": "UNKNOWN", "authorised_by": "dr_khan", "indication": "TRAUMA"}
    payload = requested_payload(**(fields | overrides))
    del payload["component"], payload["units"]
    return payload


def pack_payload(request: dict, pack: int) -> dict:
    return {
        "request_id": request["request_id"],
        "hospital_id": request["hospital_id"],
        "pack": pack,
        "requested_by": "stmary_staff",
        "requested_at": datetime.now(UTC).isoformat(),
    }


def stop_payload(request: dict) -> dict:
    return {
        "request_id": request["request_id"],
        "hospital_id": request["hospital_id"],
        "stopped_by": "stmary_staff",
        "stopped_at": datetime.now(UTC).isoformat(),
    }


# -- section 5: the confirmed-group rule ---------------------------------------------------------
def test_an_unconfirmed_a_plus_patient_gets_group_o_red_cells_although_a_plus_is_on_the_shelf(unit_factory):
    unit_factory.create_batch(4, blood_group="A+")
    unit_factory.create_batch(2, blood_group="O+")
    decided = decide(blood_group="A+", units=2)
    assert decided.group_confirmed is False
    assert groups_of(decided) == ["O+", "O+"]


def test_an_unconfirmed_a_plus_patient_is_rejected_rather_than_given_a_plus(unit_factory):
    unit_factory.create_batch(4, blood_group="A+")
    needed_by = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    decided = decide(blood_group="A+", units=1, priority="SCHEDULED", needed_by=needed_by, allow_partial=False)
    assert decided.status == RequestStatus.REJECTED and decided.reason_code == "NO_COMPATIBLE_UNITS"


def test_the_same_patient_confirmed_gets_a_plus(unit_factory):
    unit_factory.create_batch(4, blood_group="A+")
    assert groups_of(decide(blood_group="A+", units=2, group_confirmed=True)) == ["A+", "A+"]


def test_a_v1_request_means_an_unconfirmed_group(unit_factory):
    unit_factory.create_batch(2, blood_group="B+")
    unit_factory(blood_group="O+")
    with transaction.atomic():
        decided = receive_blood_request(
            request=BloodRequestedV1.model_validate(requested_payload(blood_group="B+", units=1))
        )
    assert (decided.group_confirmed, decided.rhd_negative_required) == (False, True)
    assert groups_of(decided) == ["O+"]


def test_an_unconfirmed_rhd_negative_scheduled_request_may_use_the_o_negative_reserve(unit_factory):
    unit_factory.create_batch(3, blood_group="O-")
    now = datetime.now(UTC)
    payload = requested_payload(
        blood_group="A-", units=2, priority="SCHEDULED", needed_by=(now + timedelta(days=1)).isoformat()
    )
    handle(topics.REQUESTED, payload)
    decide_waiting_requests()
    assert groups_of(BankRequest.objects.get(pk=payload["request_id"])) == ["O-", "O-"]


def test_unconfirmed_plasma_is_ab_then_ht_negative_a_never_the_stated_group(unit_factory):
    unit_factory.create_batch(3, component="PLASMA", blood_group="O+")
    unit_factory(component="PLASMA", blood_group="A+")
    unit_factory(component="PLASMA", blood_group="A-", special_attributes=["HT_NEGATIVE"])
    unit_factory(component="PLASMA", blood_group="AB+")
    decided = decide(component="PLASMA", blood_group="O+", units=4)
    assert decided.status == RequestStatus.PARTIALLY_APPROVED
    assert groups_of(decided) == ["AB+", "A-"]


# -- section 5: emergency release ----------------------------------------------------------------
def test_an_unknown_group_gets_o_negative_marked_uncrossmatched(unit_factory):
    unit_factory.create_batch(3, blood_group="O+")
    unit_factory.create_batch(2, blood_group="O-")
    decided = decide(blood_group="UNKNOWN", authorised_by="dr_khan", units=3)
    assert decided.status == RequestStatus.PARTIALLY_APPROVED and decided.uncrossmatched
    assert groups_of(decided) == ["O-", "O-"]
    (approved,) = decisions(decided.request_id)
    assert approved.data.uncrossmatched is True and approved.data.pack is None


def test_an_unknown_group_without_the_rhd_negative_requirement_takes_o_positive_first(unit_factory):
    unit_factory.create_batch(1, blood_group="O+")
    unit_factory.create_batch(2, blood_group="O-")
    decided = decide(blood_group="UNKNOWN", authorised_by="dr_khan", units=3, rhd_negative_required=False)
    assert groups_of(decided) == ["O+", "O-", "O-"]


def test_a_known_group_decision_is_not_uncrossmatched(unit_factory):
    unit_factory.create_batch(2)
    decided = decide(units=1)
    assert decisions(decided.request_id)[0].data.uncrossmatched is False


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"blood_group": "UNKNOWN", "authorised_by": "dr_khan", "component": "WHOLE_BLOOD"}, "whole blood"),
        ({"blood_group": "UNKNOWN", "authorised_by": "dr_khan", "allow_partial": False}, "allow_partial"),
        ({"blood_group": "UNKNOWN"}, "authorised_by"),
        ({"component": "WHOLE_BLOOD", "blood_group": "A+"}, "confirmed"),
    ],
)
def test_forbidden_combinations_are_rejected_as_invalid_and_allocate_nothing(unit_factory, fields, why):
    unit_factory.create_batch(3, blood_group="O-", component=fields.get("component", "RED_CELLS"))
    decided = decide(units=1, **fields)
    assert decided.status == RequestStatus.REJECTED and decided.reason_code == "INVALID_REQUEST"
    assert why in decided.detail
    (rejected,) = decisions(decided.request_id)
    assert rejected.major == 2 and rejected.data.reason_code == "INVALID_REQUEST"
    assert not Unit.objects.filter(status=UnitStatus.ALLOCATED).exists()


def test_an_unknown_group_on_a_scheduled_request_is_invalid(unit_factory):
    unit_factory.create_batch(3, blood_group="O-")
    now = datetime.now(UTC)
    payload = requested_payload(
        blood_group="UNKNOWN",
        authorised_by="dr_khan",
        priority="SCHEDULED",
        needed_by=(now + timedelta(days=1)).isoformat(),
    )
    handle(topics.REQUESTED, payload)
    decide_waiting_requests()
    assert BankRequest.objects.get(pk=payload["request_id"]).reason_code == "INVALID_REQUEST"


# -- section 6: special requirements -------------------------------------------------------------
def test_a_k_negative_irradiated_request_gets_only_units_carrying_both(unit_factory):
    unit_factory.create_batch(5, blood_group="O+")
    unit_factory(blood_group="O+", special_attributes=["IRRADIATED"])
    unit_factory(blood_group="O+", antigen_negative=["K"])
    both = unit_factory(
        blood_group="O+", special_attributes=["IRRADIATED", "CMV_NEGATIVE"], antigen_negative=["K", "E"]
    )
    decided = decide(units=2, special_requirements=["IRRADIATED"], antigen_negative=["K"])
    assert decided.status == RequestStatus.PARTIALLY_APPROVED
    assert list(decided.allocations.values_list("unit_id", flat=True)) == [both.pk]
    (approved,) = decisions(decided.request_id)
    (allocation,) = approved.data.allocations
    assert allocation.special_attributes == ["IRRADIATED", "CMV_NEGATIVE"]
    assert (allocation.product_code, allocation.division) == ("E0398V00", "00")


def test_the_fast_path_takes_a_whole_request_of_qualifying_units(unit_factory):
    unit_factory.create_batch(3, blood_group="O+")  # plain units expire first: they must be skipped
    wanted = unit_factory.create_batch(
        2, blood_group="O+", special_attributes=["WASHED"], expires_at=datetime.now(UTC) + timedelta(days=30)
    )
    decided = decide(units=2, special_requirements=["WASHED"], allow_partial=False)
    assert decided.status == RequestStatus.APPROVED
    assert set(decided.allocations.values_list("unit_id", flat=True)) == {u.pk for u in wanted}


def test_compatible_units_none_qualifying_are_rejected_with_their_own_reason(unit_factory):
    unit_factory.create_batch(4, blood_group="O+")
    decided = decide(units=2, special_requirements=["CMV_NEGATIVE"])
    assert decided.status == RequestStatus.REJECTED and decided.reason_code == "NO_UNITS_MEETING_REQUIREMENTS"
    assert "CMV_NEGATIVE" in decided.detail
    (rejected,) = decisions(decided.request_id)
    assert rejected.data.reason_code == "NO_UNITS_MEETING_REQUIREMENTS" and rejected.major == 2


def test_requirements_short_of_a_whole_request_without_partial_have_their_own_reason(unit_factory):
    unit_factory.create_batch(4, blood_group="O+")
    unit_factory(blood_group="O+", special_attributes=["HBS_NEGATIVE"])
    decided = decide(units=2, special_requirements=["HBS_NEGATIVE"], allow_partial=False)
    assert decided.reason_code == "NO_UNITS_MEETING_REQUIREMENTS"
    assert not Unit.objects.filter(status=UnitStatus.ALLOCATED).exists()


def test_a_requirement_that_does_not_apply_to_the_component_is_ignored(unit_factory):
    unit_factory(component="PLASMA", blood_group="AB+")
    decided = decide(
        component="PLASMA", blood_group="AB+", units=1, special_requirements=["IRRADIATED"], antigen_negative=["K"]
    )
    assert decided.status == RequestStatus.APPROVED


# -- section 7: MTP packs ---------------------------------------------------------------------------
@pytest.fixture
def trauma_stock(unit_factory):
    unit_factory.create_batch(10, blood_group="O-")
    unit_factory.create_batch(3, blood_group="A+")  # never for an unknown group
    unit_factory.create_batch(6, component="PLASMA", blood_group="AB+")
    unit_factory.create_batch(3, component="PLASMA", blood_group="A+", special_attributes=["HT_NEGATIVE"])
    unit_factory.create_batch(2, component="PLATELETS", blood_group="A-")
    unit_factory.create_batch(2, component="PLATELETS", blood_group="B+")


def test_an_mtp_request_has_pack_one_decided_on_arrival(trauma_stock):
    payload = mtp_payload()
    handle(topics.REQUESTED, payload)
    bank_request = BankRequest.objects.get(pk=payload["request_id"])
    assert bank_request.status == RequestStatus.MTP_ACTIVE and bank_request.uncrossmatched
    (pack,) = bank_request.packs.all()
    assert (pack.number, pack.status, pack.units_requested, pack.units_allocated) == (1, "APPROVED", 8, 8)
    (approved,) = decisions(payload["request_id"])
    assert approved.data.pack == 1 and approved.data.units_requested == 8 and approved.data.uncrossmatched
    assert sorted(a.component for a in approved.data.allocations) == ["PLASMA"] * 4 + ["RED_CELLS"] * 4
    assert {a.blood_group for a in approved.data.allocations if a.component == "RED_CELLS"} == {"O-"}
    assert {a.blood_group for a in approved.data.allocations if a.component == "PLASMA"} == {"AB+"}
    assert bytes(bank_request.decision_event) == bytes(pack.decision_event)
    assert set(bank_request.allocations.values_list("pack", flat=True)) == {1}


def test_pack_two_adds_platelets_and_is_decided_on_its_own_event(trauma_stock):
    payload = mtp_payload()
    handle(topics.REQUESTED, payload)
    handle(topics.MTP_PACK_REQUESTED, pack_payload(payload, 2))
    _, second = decisions(payload["request_id"])
    assert second.data.pack == 2 and second.data.units_requested == 9
    assert sorted(a.component for a in second.data.allocations) == ["PLASMA"] * 4 + ["PLATELETS"] + ["RED_CELLS"] * 4
    platelets = [a for a in second.data.allocations if a.component == "PLATELETS"]
    assert platelets[0].blood_group == "A-"  # AB, A, B, O; RhD-negative while required
    plasma = [a for a in second.data.allocations if a.component == "PLASMA"]
    assert sorted(a.blood_group for a in plasma) == ["A+", "A+", "AB+", "AB+"]  # 2 AB left, then HT-negative A
    assert all(a.blood_group == "AB+" or "HT_NEGATIVE" in a.special_attributes for a in plasma)
    assert MtpPack.objects.filter(request_id=payload["request_id"]).count() == 2


def test_a_pack_short_of_stock_is_partly_approved(trauma_stock):
    payload = mtp_payload()
    handle(topics.REQUESTED, payload)
    handle(topics.MTP_PACK_REQUESTED, pack_payload(payload, 2))
    handle(topics.MTP_PACK_REQUESTED, pack_payload(payload, 3))  # 2 O-, 1 plasma (HT-neg A), 1 platelet left
    third = decisions(payload["request_id"])[-1]
    assert third.data.pack == 3 and third.data.partial and third.data.units_allocated == 4
    pack = MtpPack.objects.get(request_id=payload["request_id"], number=3)
    assert pack.status == "PARTIALLY_APPROVED"


def test_a_pack_with_nothing_left_is_rejected_with_its_pack_number(unit_factory):
    unit_factory.create_batch(4, blood_group="O-")
    unit_factory.create_batch(4, component="PLASMA", blood_group="AB-")
    payload = mtp_payload()
    handle(topics.REQUESTED, payload)
    handle(topics.MTP_PACK_REQUESTED, pack_payload(payload, 2))
    rejected = decisions(payload["request_id"])[-1]
    assert rejected.type == topics.REJECTED and rejected.data.pack == 2
    assert rejected.data.reason_code == "NO_COMPATIBLE_UNITS"


def test_repeated_mtp_events_resend_each_packs_decision_byte_for_byte(trauma_stock):
    payload = mtp_payload()
    handle(topics.REQUESTED, payload)
    handle(topics.MTP_PACK_REQUESTED, pack_payload(payload, 2))
    allocated = Allocation.objects.count()
    handle(topics.REQUESTED, payload)  # the watchdog's repeat
    handle(topics.MTP_PACK_REQUESTED, pack_payload(payload, 2))
    rows = list(OutboxEvent.objects.filter(key=payload["request_id"], event_type=topics.APPROVED).order_by("id"))
    assert len(rows) == 4
    assert bytes(rows[2].value) == bytes(rows[0].value) and rows[2].event_id == rows[0].event_id
    assert bytes(rows[3].value) == bytes(rows[1].value) and rows[3].event_id == rows[1].event_id
    assert Allocation.objects.count() == allocated


def test_stopping_an_mtp_releases_undispatched_units_and_decides_no_further_pack(trauma_stock):
    payload = mtp_payload()
    handle(topics.REQUESTED, payload)
    handle(topics.MTP_PACK_REQUESTED, pack_payload(payload, 2))
    dispatch_request(request_id=payload["request_id"], by="bank_admin")  # pack 1 leaves the bank
    handle(topics.MTP_STOPPED, stop_payload(payload))
    bank_request = BankRequest.objects.get(pk=payload["request_id"])
    assert bank_request.status == RequestStatus.MTP_STOPPED and bank_request.mtp_stopped_by == "stmary_staff"
    (released,) = [parse_event(bytes(r.value)) for r in OutboxEvent.objects.filter(event_type=topics.RELEASED)]
    pack_two = set(Allocation.objects.filter(request=bank_request, pack=2).values_list("unit_id", flat=True))
    assert released.data.reason == "MTP_STOPPED" and set(released.data.unit_ids) == pack_two
    assert Unit.objects.filter(pk__in=pack_two, status=UnitStatus.AVAILABLE).count() == 9
    assert Unit.objects.filter(allocations__pack=1, status=UnitStatus.ISSUED).count() == 8
    before = Allocation.objects.count()
    handle(topics.MTP_PACK_REQUESTED, pack_payload(payload, 3))
    rejected = decisions(payload["request_id"])[-1]
    assert rejected.type == topics.REJECTED and rejected.data.pack == 3
    assert rejected.data.reason_code == "CANCELLED_BEFORE_DECISION"
    assert Allocation.objects.count() == before
    handle(topics.MTP_STOPPED, stop_payload(payload))  # a repeat changes nothing
    assert OutboxEvent.objects.filter(event_type=topics.RELEASED).count() == 1


def test_a_confirmed_mtp_patient_gets_group_specific_packs(unit_factory):
    unit_factory.create_batch(4, blood_group="A+")
    unit_factory.create_batch(4, component="PLASMA", blood_group="A+")
    unit_factory.create_batch(4, blood_group="O-")
    payload = mtp_payload(blood_group="A+", group_confirmed=True)
    handle(topics.REQUESTED, payload)
    bank_request = BankRequest.objects.get(pk=payload["request_id"])
    assert set(groups_of(bank_request)) == {"A+"} and not bank_request.uncrossmatched


@pytest.mark.parametrize("fields", [{"authorised_by": None}, {"priority": "SCHEDULED"}])
def test_an_mtp_without_the_clinician_or_not_an_emergency_is_invalid(trauma_stock, fields):
    payload = mtp_payload() | fields
    if fields.get("priority") == "SCHEDULED":
        payload["needed_by"] = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    payload = {key: value for key, value in payload.items() if value is not None}
    handle(topics.REQUESTED, payload)
    decide_waiting_requests()
    bank_request = BankRequest.objects.get(pk=payload["request_id"])
    assert bank_request.reason_code == "INVALID_REQUEST" and not bank_request.packs.exists()
    handle(topics.MTP_PACK_REQUESTED, pack_payload(payload, 2))
    assert decisions(payload["request_id"])[-1].data.reason_code == "INVALID_REQUEST"
    assert not Allocation.objects.exists()


def test_pack_events_for_an_unknown_or_standard_request_are_refused(unit_factory):
    unit_factory.create_batch(2)
    standard = requested_payload(units=1)
    handle(topics.REQUESTED, standard)
    with pytest.raises(RefusedEvent):
        handle(topics.MTP_PACK_REQUESTED, pack_payload(standard, 2))
    stranger = mtp_payload()
    with pytest.raises(RefusedEvent):
        handle(topics.MTP_STOPPED, stop_payload(stranger))
    other_hospital = mtp_payload()
    handle(topics.REQUESTED, other_hospital)
    with pytest.raises(RefusedEvent):
        handle(topics.MTP_PACK_REQUESTED, pack_payload(other_hospital, 2) | {"hospital_id": str(uuid.uuid4())})


def test_a_cancelled_mtp_releases_its_packs_and_gets_no_further_pack(trauma_stock):
    payload = mtp_payload()
    handle(topics.REQUESTED, payload)
    handle(topics.CANCELLED, cancelled_payload(payload["request_id"], payload["hospital_id"]))
    assert not Unit.objects.filter(status=UnitStatus.ALLOCATED).exists()
    handle(topics.MTP_PACK_REQUESTED, pack_payload(payload, 2))
    assert decisions(payload["request_id"])[-1].data.reason_code == "CANCELLED_BEFORE_DECISION"
    assert not Unit.objects.filter(status=UnitStatus.ALLOCATED).exists()
