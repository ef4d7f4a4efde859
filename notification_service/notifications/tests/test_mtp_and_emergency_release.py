"""Emergency release, MTP packs and unmet requirements in notifications (transfusion.md section 10),
through the service's handlers with real events of either major."""

import uuid

import pytest

from notifications.handlers import HANDLERS
from notifications.models import KnownRequest, Notification
from notifications.tests import factories
from notifications.tests.factories import ST_MARY

pytestmark = pytest.mark.django_db
BANK = "bloodbank"


def handle(event):
    HANDLERS[event.type](event)
    return event


def _rows(request_id, **filters):
    return list(
        Notification.objects.filter(request_id=request_id, **filters)
        .order_by("feed_seq")
        .values_list("audience", "kind", "severity", "pack")
    )


@pytest.mark.parametrize("major", [1, 2])
def test_a_requested_event_of_either_major_is_remembered(major):
    event = handle(factories.requested(major=major))
    assert event.major == major

    known = KnownRequest.objects.get(request_id=event.data.request_id)
    assert (known.blood_group, known.component, known.units, known.protocol) == ("O+", "RED_CELLS", 2, "STANDARD")
    assert len(_rows(event.data.request_id, kind="REQUEST_CREATED")) == 2


def test_an_mtp_request_of_unknown_group_is_remembered_without_component_or_units():
    event = handle(factories.mtp_requested(blood_group="UNKNOWN"))

    known = KnownRequest.objects.get(request_id=event.data.request_id)
    assert (known.blood_group, known.protocol, known.component, known.units) == ("UNKNOWN", "MTP", None, None)
    bank = Notification.objects.get(request_id=event.data.request_id, audience=BANK)
    assert (bank.kind, bank.severity, bank.component, bank.blood_group) == ("REQUEST_CREATED", "CRITICAL", None, None)
    assert bank.title == "MTP request: massive transfusion packs, group unknown for St Mary's Hospital"
    assert "Authorised by a clinician." in bank.body and "Emergency release" in bank.body
    assert "Okafor" not in bank.title + bank.body  # the hospital's free text stays out of notifications


def test_an_emergency_release_approval_is_critical_for_that_hospital_only():
    request = handle(factories.requested(blood_group="UNKNOWN", authorised_by="Dr Okafor", group_confirmed=False))
    request_id = request.data.request_id

    handle(factories.approved(request_id=request_id, groups=("O-", "O-"), uncrossmatched=True))

    (alert,) = Notification.objects.filter(request_id=request_id, kind="EMERGENCY_RELEASE_APPROVED")
    assert (alert.audience, alert.severity) == (ST_MARY.audience, "CRITICAL")
    assert alert.title.startswith("UNCROSSMATCHED: emergency release approved")
    assert "2 units O-" in alert.body and "crossmatch" in alert.body
    assert alert.blood_group == "O-"  # the units' group; the request's UNKNOWN is no stock key
    assert not Notification.objects.filter(request_id=request_id, kind="REQUEST_APPROVED").exists()


def test_an_ordinary_approval_is_not_an_emergency_release():
    request_id = handle(factories.requested()).data.request_id
    handle(factories.approved(request_id=request_id))
    assert [k for _, k, _, _ in _rows(request_id, audience=ST_MARY.audience)] == ["REQUEST_CREATED", "REQUEST_APPROVED"]


def test_each_mtp_pack_is_its_own_notification_and_a_repeat_is_not():
    request_id = handle(factories.mtp_requested()).data.request_id
    pack_1 = factories.approved(request_id=request_id, allocations=factories.mtp_pack(), requested_units=8, pack=1)
    handle(pack_1)
    handle(pack_1)  # the bank re-sends its decision byte for byte
    asked = handle(factories.pack_requested(request_id=request_id, pack=2))
    handle(factories.pack_requested(request_id=request_id, pack=2))  # the hospital's watchdog, a new event id
    handle(
        factories.approved(
            request_id=request_id, allocations=factories.mtp_pack(plasma=2, platelets=1), requested_units=9, pack=2
        )
    )
    handle(factories.pack_requested(request_id=request_id, pack=3))
    handle(factories.rejected(request_id=request_id, pack=3, reason_code="NO_UNITS_MEETING_REQUIREMENTS"))
    handle(factories.mtp_stopped(request_id=request_id))

    assert _rows(request_id)[2:] == [
        (ST_MARY.audience, "REQUEST_APPROVED", "INFO", 1),
        (BANK, "MTP_PACK_REQUESTED", "CRITICAL", 2),
        (ST_MARY.audience, "REQUEST_PARTIALLY_APPROVED", "WARNING", 2),
        (BANK, "MTP_PACK_REQUESTED", "CRITICAL", 3),
        (ST_MARY.audience, "REQUEST_REJECTED", "CRITICAL", 3),
        (BANK, "MTP_STOPPED", "INFO", None),
    ]
    approval = Notification.objects.get(request_id=request_id, kind="REQUEST_APPROVED")
    assert approval.title == f"Approved: MTP pack 1 of request {str(request_id)[:8]}"
    assert "4 units plasma, 4 units red cells" in approval.body
    partial = Notification.objects.get(request_id=request_id, kind="REQUEST_PARTIALLY_APPROVED")
    assert "7 of 9 units" in partial.body and "1 unit platelets" in partial.body
    pack_2 = Notification.objects.get(source_event_id=asked.id)
    assert pack_2.title == "MTP pack 2 requested by St Mary's Hospital"
    stopped = Notification.objects.get(request_id=request_id, kind="MTP_STOPPED")
    assert "Units not yet dispatched go back to stock" in stopped.body
    rejected = Notification.objects.get(request_id=request_id, kind="REQUEST_REJECTED")
    assert "none meets the special requirements" in rejected.body and "(MTP pack 3)" in rejected.body


def test_an_uncrossmatched_mtp_pack_is_an_emergency_release_per_pack():
    request_id = handle(factories.mtp_requested(blood_group="UNKNOWN")).data.request_id
    for pack in (1, 2):
        handle(
            factories.approved(
                request_id=request_id,
                allocations=factories.mtp_pack(),
                requested_units=8,
                pack=pack,
                uncrossmatched=True,
            )
        )
    rows = _rows(request_id, kind="EMERGENCY_RELEASE_APPROVED")
    assert rows == [(ST_MARY.audience, "EMERGENCY_RELEASE_APPROVED", "CRITICAL", p) for p in (1, 2)]


@pytest.mark.parametrize("major", [1, 2])
def test_a_rejection_of_either_major_notifies_the_hospital(major):
    request_id = handle(factories.requested()).data.request_id
    handle(factories.rejected(request_id=request_id, major=major))
    ((audience, _kind, severity, pack),) = _rows(request_id, kind="REQUEST_REJECTED")
    assert (audience, severity, pack) == (ST_MARY.audience, "CRITICAL", None)


def test_unmet_requirements_are_said_in_words():
    request_id = handle(
        factories.requested(special_requirements=["IRRADIATED"], antigen_negative=["K"])
    ).data.request_id
    bank = Notification.objects.get(request_id=request_id, audience=BANK)
    assert "Requirements: irradiated, K-negative." in bank.body
    assert "Group not confirmed" in bank.body

    handle(factories.rejected(request_id=request_id, reason_code="NO_UNITS_MEETING_REQUIREMENTS"))

    rejected = Notification.objects.get(request_id=request_id, kind="REQUEST_REJECTED")
    assert "compatible units are in stock, but none meets the special requirements" in rejected.body


def test_pack_events_before_the_request_is_known_still_notify():
    request_id = uuid.uuid4()
    handle(factories.pack_requested(request_id=request_id, pack=2))
    handle(factories.mtp_stopped(request_id=request_id))
    assert [(k, s) for _, k, s, _ in _rows(request_id)] == [("MTP_PACK_REQUESTED", "CRITICAL"), ("MTP_STOPPED", "INFO")]
