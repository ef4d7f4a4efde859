"""Massive transfusion protocol at the hospital (transfusion.md section 7), driven by the bank's real events:
pack 1 with the request, each pack its own decision, dispatch and receipt, next-pack, stop."""

import pytest
from local_inventory.models import LocalUnit
from testing_support.factories import (
    approved_event,
    dispatched_event,
    make_request,
    mtp_pack_allocations,
    rejected_event,
    released_event,
)

from blood_requests import services
from blood_requests.handlers import HANDLERS
from blood_requests.models import BloodRequest
from shared_events import topics
from shared_events.django.models import OutboxEvent
from shared_events.envelope import parse_event

pytestmark = pytest.mark.django_db

URL = "/api/v1/blood-requests/"
MTP = {"protocol": "MTP", "blood_group": "UNKNOWN", "priority": "EMERGENCY", "authorised_by": "Dr Okafor"}


def _handle(event) -> None:
    HANDLERS[event.type](event)


def _published(event_type: str):
    return [parse_event(bytes(r.value)) for r in OutboxEvent.objects.filter(event_type=event_type).order_by("id")]


def _mtp(api) -> BloodRequest:
    response = api.post(URL, MTP, format="json")
    assert response.status_code == 201, response.data
    return BloodRequest.objects.get(id=response.data["id"])


def _approve(blood_request, pack: int, **kwargs) -> list[dict]:
    allocations = mtp_pack_allocations(pack=pack, **kwargs)
    _handle(
        approved_event(
            blood_request,
            pack=pack,
            allocations=allocations,
            units_requested=9 if pack >= 2 else 8,
            uncrossmatched=True,
        )
    )
    return allocations


def _dispatch(blood_request, pack: int, allocations: list[dict]) -> None:
    _handle(dispatched_event(blood_request, allocations, pack=pack))


def _receive(api, blood_request, allocations, pack: int | None):
    body = {"dins": [a["din"] for a in allocations]} | ({"pack": pack} if pack is not None else {})
    return api.post(f"{URL}{blood_request.id}/receive/", body, format="json")


def _packs(api, blood_request) -> list[tuple[int, str]]:
    return [(p["pack"], p["status"]) for p in api.get(f"{URL}{blood_request.id}/").data["packs"]]


def test_an_mtp_with_three_packs_from_request_to_fulfilled(api, hospital, staff):
    blood_request = _mtp(api)
    detail = f"{URL}{blood_request.id}/"
    # Nothing decided yet: no next pack, no stop.
    assert api.post(f"{detail}next-pack/").status_code == 409
    assert api.post(f"{detail}stop-mtp/").status_code == 409

    pack_1 = _approve(blood_request, 1)
    body = api.get(detail).data
    assert body["status"] == "MTP_ACTIVE" and body["uncrossmatched"] is True
    (pack,) = body["packs"]
    assert (pack["pack"], pack["status"], pack["units_requested"], pack["units_allocated"]) == (1, "APPROVED", 8, 8)
    assert pack["uncrossmatched"] is True
    assert {a["component"] for a in pack["allocations"]} == {"RED_CELLS", "PLASMA"}
    assert pack["allocations"][0]["product_code"] == "E0398V00" and pack["allocations"][0]["division"] == "00"
    assert pack["allocations"][0]["special_attributes"] == ["LEUKOREDUCED"]

    # Pack 2 is asked for through the outbox, with pack = last + 1; a third waits for pack 2's decision.
    response = api.post(f"{detail}next-pack/")
    assert response.status_code == 200, response.data
    assert [(p["pack"], p["status"]) for p in response.data["packs"]] == [(1, "APPROVED"), (2, "REQUESTED")]
    (asked,) = _published(topics.MTP_PACK_REQUESTED)
    assert (asked.data.pack, asked.data.request_id, asked.data.requested_by) == (2, blood_request.id, "stmary_staff")
    assert asked.subject == str(blood_request.id)
    assert api.post(f"{detail}next-pack/").status_code == 409
    assert len(_published(topics.MTP_PACK_REQUESTED)) == 1

    pack_2 = _approve(blood_request, 2)
    assert api.post(f"{detail}next-pack/").status_code == 200
    _handle(rejected_event(blood_request, pack=3, reason_code="NO_UNITS_MEETING_REQUIREMENTS"))
    assert _packs(api, blood_request) == [(1, "APPROVED"), (2, "APPROVED"), (3, "REJECTED")]
    pack_3 = api.get(detail).data["packs"][2]
    assert pack_3["decision"]["reason_code"] == "NO_UNITS_MEETING_REQUIREMENTS"

    # Each pack is dispatched and received on its own, its DINs as a multiset.
    _dispatch(blood_request, 1, pack_1)
    _dispatch(blood_request, 2, pack_2)
    assert _packs(api, blood_request)[:2] == [(1, "DISPATCHED"), (2, "DISPATCHED")]
    mismatch = _receive(api, blood_request, pack_2, pack=1)
    assert mismatch.status_code == 409 and mismatch.data["missing_dins"] and mismatch.data["unexpected_dins"]
    assert _receive(api, blood_request, pack_1, pack=1).status_code == 200
    assert _receive(api, blood_request, pack_1, pack=1).status_code == 409  # already received
    received = _published(topics.UNITS_RECEIVED)
    assert [(e.data.pack, len(e.data.dins)) for e in received] == [(1, 8)]

    # Stop: published; the request waits for pack 2 (on its way) before it is FULFILLED.
    response = api.post(f"{detail}stop-mtp/")
    assert response.status_code == 200, response.data
    assert response.data["status"] == "MTP_ACTIVE" and response.data["mtp_stopped_by"] == "stmary_staff"
    (stopped,) = _published(topics.MTP_STOPPED)
    assert stopped.data.request_id == blood_request.id and stopped.data.stopped_by == "stmary_staff"
    assert api.post(f"{detail}next-pack/").status_code == 409
    assert api.post(f"{detail}stop-mtp/").status_code == 409
    assert api.post(f"{detail}cancel/", {}, format="json").status_code == 409

    response = _receive(api, blood_request, pack_2, pack=None)  # default: the oldest dispatched, unreceived pack
    assert response.status_code == 200, response.data
    assert response.data["status"] == "FULFILLED"
    assert [p["status"] for p in response.data["packs"]] == ["RECEIVED", "RECEIVED", "REJECTED"]
    assert [e.data.pack for e in _published(topics.UNITS_RECEIVED)] == [1, 2]

    units = LocalUnit.objects.filter(source_request=blood_request)
    assert units.count() == 17
    assert set(units.values_list("component", flat=True)) == {"RED_CELLS", "PLASMA", "PLATELETS"}
    red = units.filter(component="RED_CELLS").first()
    assert (red.product_code, red.division, red.special_attributes) == ("E0398V00", "00", ["LEUKOREDUCED"])

    history = [(h["status"], h["detail"]) for h in api.get(detail).data["status_history"]]
    assert [status for status, _ in history][:2] == ["PENDING", "MTP_ACTIVE"]
    for text in (
        "pack 1: bank approved",
        "pack 2: requested by stmary_staff",
        "pack 3: bank rejected: NO_UNITS_MEETING_REQUIREMENTS",
        "pack 2: bank dispatched 9 unit(s)",
        "pack 1: 8 unit(s) received",
        "MTP stopped by stmary_staff",
    ):
        assert any(detail_text.startswith(text) for _, detail_text in history), (text, history)
    assert history[-1][0] == "FULFILLED"


def test_stopping_with_nothing_dispatched_cancels_and_the_released_pack_shows_it(api, hospital, staff):
    blood_request = _mtp(api)
    pack_1 = _approve(blood_request, 1)

    response = api.post(f"{URL}{blood_request.id}/stop-mtp/")

    assert response.status_code == 200
    assert response.data["status"] == "CANCELLED"
    assert "nothing supplied" in response.data["status_history"][-1]["detail"]
    _handle(released_event(blood_request, [a["unit_id"] for a in pack_1], reason="MTP_STOPPED"))
    body = api.get(f"{URL}{blood_request.id}/").data
    assert [(p["pack"], p["status"]) for p in body["packs"]] == [(1, "RELEASED")]
    assert body["status_history"][-1]["detail"] == "pack 1: bank released 8 unit(s) (MTP_STOPPED)"
    assert len(body["released_unit_ids"]) == 8


def test_a_pack_the_bank_dispatched_before_it_saw_the_stop_can_still_be_received(api, hospital, staff):
    blood_request = _mtp(api)
    pack_1 = _approve(blood_request, 1)
    assert api.post(f"{URL}{blood_request.id}/stop-mtp/").data["status"] == "CANCELLED"

    _dispatch(blood_request, 1, pack_1)
    response = _receive(api, blood_request, pack_1, pack=1)

    assert response.status_code == 200, response.data
    assert response.data["status"] == "CANCELLED"  # stays so, but the units are here and each needs a fate
    assert LocalUnit.objects.filter(source_request=blood_request).count() == 8


def test_a_pack_not_yet_decided_when_stopped_becomes_stopped(api, hospital, staff):
    blood_request = _mtp(api)
    _approve(blood_request, 1)
    api.post(f"{URL}{blood_request.id}/next-pack/")

    response = api.post(f"{URL}{blood_request.id}/stop-mtp/")

    assert [(p["pack"], p["status"]) for p in response.data["packs"]] == [(1, "APPROVED"), (2, "STOPPED")]
    assert response.data["status"] == "CANCELLED"
    # The bank decided pack 2 before it saw the stop: kept on the pack, the request stays as it is.
    _approve(blood_request, 2)
    assert _packs(api, blood_request) == [(1, "APPROVED"), (2, "APPROVED")]
    assert api.get(f"{URL}{blood_request.id}/").data["status"] == "CANCELLED"


def test_a_repeated_pack_decision_or_dispatch_changes_nothing(api, hospital, staff):
    blood_request = _mtp(api)
    allocations = mtp_pack_allocations(pack=1)
    event = approved_event(blood_request, pack=1, allocations=allocations, units_requested=8)
    _handle(event)
    before = api.get(f"{URL}{blood_request.id}/").json()
    _handle(event)
    _handle(approved_event(blood_request, pack=1, allocations=mtp_pack_allocations(pack=1), units_requested=8))
    _handle(rejected_event(blood_request, pack=1))
    after = api.get(f"{URL}{blood_request.id}/").json()
    assert after["packs"] == before["packs"] and after["status_history"] == before["status_history"]

    dispatch = dispatched_event(blood_request, allocations, pack=1)
    _handle(dispatch)
    once = api.get(f"{URL}{blood_request.id}/").json()
    _handle(dispatch)
    assert api.get(f"{URL}{blood_request.id}/").json()["status_history"] == once["status_history"]


def test_a_dispatch_that_overtakes_the_decision_makes_the_mtp_active_and_keeps_the_decision(api):
    blood_request = _mtp(api)
    allocations = mtp_pack_allocations(pack=1, plasma=2)
    _dispatch(blood_request, 1, allocations)
    assert api.get(f"{URL}{blood_request.id}/").data["status"] == "MTP_ACTIVE"

    _handle(approved_event(blood_request, pack=1, allocations=allocations, units_requested=8))

    (pack,) = api.get(f"{URL}{blood_request.id}/").data["packs"]
    assert pack["status"] == "DISPATCHED"
    assert pack["decision"]["detail"] == "6 of 8 unit(s) allocated" and pack["units_allocated"] == 6


def test_a_pack_decision_overtaken_by_its_dispatch_is_kept_after_the_pack_was_received(api):
    blood_request = _mtp(api)
    allocations = mtp_pack_allocations(pack=1, plasma=2)
    _dispatch(blood_request, 1, allocations)
    assert _receive(api, blood_request, allocations, pack=1).status_code == 200

    _handle(approved_event(blood_request, pack=1, allocations=allocations, units_requested=8, uncrossmatched=True))

    (pack,) = api.get(f"{URL}{blood_request.id}/").data["packs"]
    assert pack["status"] == "RECEIVED"
    assert pack["decision"]["detail"] == "6 of 8 unit(s) allocated, UNCROSSMATCHED (emergency release)"
    assert pack["units_allocated"] == 6 and pack["uncrossmatched"] is True


@pytest.mark.parametrize(("reason", "status"), [("INSUFFICIENT_STOCK", "MTP_ACTIVE"), ("INVALID_REQUEST", "REJECTED")])
def test_pack_1_rejected_for_want_of_stock_keeps_the_mtp_active_but_an_invalid_request_ends_it(api, reason, status):
    blood_request = _mtp(api)

    _handle(rejected_event(blood_request, pack=1, reason_code=reason))

    body = api.get(f"{URL}{blood_request.id}/").data
    assert body["status"] == status
    assert body["packs"][0]["status"] == "REJECTED"
    assert (api.post(f"{URL}{blood_request.id}/next-pack/").status_code == 200) == (status == "MTP_ACTIVE")


def test_receive_names_a_pack_only_for_an_mtp(api, hospital, staff):
    blood_request = _mtp(api)
    pack_1 = _approve(blood_request, 1)
    _dispatch(blood_request, 1, pack_1)
    assert _receive(api, blood_request, pack_1, pack=7).status_code == 400
    assert _receive(api, blood_request, pack_1, pack=0).status_code == 400

    standard = make_request(hospital=hospital, user=staff)
    _handle(approved_event(standard))
    standard.refresh_from_db()
    _handle(dispatched_event(standard))
    response = _receive(api, standard, standard.allocations, pack=1)
    assert response.status_code == 400 and "pack" in response.data
    assert not LocalUnit.objects.exists()


def test_next_pack_and_stop_are_409_on_a_standard_request_and_404_for_another_hospital(api, other_api, hospital, staff):
    standard = make_request(hospital=hospital, user=staff)
    _handle(approved_event(standard))
    assert api.post(f"{URL}{standard.id}/next-pack/").status_code == 409
    assert api.post(f"{URL}{standard.id}/stop-mtp/").status_code == 409

    blood_request = _mtp(api)
    _approve(blood_request, 1)
    assert other_api.post(f"{URL}{blood_request.id}/next-pack/").status_code == 404
    assert other_api.post(f"{URL}{blood_request.id}/stop-mtp/").status_code == 404
    assert not _published(topics.MTP_PACK_REQUESTED) and not _published(topics.MTP_STOPPED)


def test_an_undecided_pack_is_published_again_by_the_watchdog(api, settings):
    from datetime import timedelta

    from django.utils import timezone

    blood_request = _mtp(api)
    _approve(blood_request, 1)
    api.post(f"{URL}{blood_request.id}/next-pack/")

    later = timezone.now() + timedelta(seconds=settings.REQUEST_REPUBLISH_AFTER_SECONDS + 1)
    assert services.republish_stale_requests(now=later) == 1

    first, again = _published(topics.MTP_PACK_REQUESTED)
    assert again.id != first.id and (again.data.pack, again.data.requested_at) == (2, first.data.requested_at)
    _approve(blood_request, 2)
    assert services.republish_stale_requests(now=later + timedelta(hours=1)) == 0


def test_an_emergency_release_approval_is_recorded_uncrossmatched(api, hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff, blood_group="UNKNOWN", authorised_by="Dr Okafor")

    _handle(approved_event(blood_request, uncrossmatched=True))

    body = api.get(f"{URL}{blood_request.id}/").data
    assert body["status"] == "APPROVED" and body["uncrossmatched"] is True
    assert "UNCROSSMATCHED" in body["decision"]["detail"]
    assert body["allocations"][0]["blood_group"] == "O-"
    assert body["allocations"][0]["product_code"] == "E0398V00"


@pytest.mark.parametrize("major", [1, 2])
def test_a_rejection_of_either_major_is_applied(hospital, staff, major):
    blood_request = make_request(hospital=hospital, user=staff)
    event = rejected_event(blood_request, reason_code="INSUFFICIENT_STOCK", major=major)
    assert event.major == major

    _handle(event)

    blood_request.refresh_from_db()
    assert (blood_request.status, blood_request.decision_reason_code) == ("REJECTED", "INSUFFICIENT_STOCK")


def test_a_v2_rejection_for_unmet_requirements_is_applied(hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff, special_requirements=["IRRADIATED"])

    _handle(rejected_event(blood_request, reason_code="NO_UNITS_MEETING_REQUIREMENTS"))

    blood_request.refresh_from_db()
    assert blood_request.decision_reason_code == "NO_UNITS_MEETING_REQUIREMENTS"
