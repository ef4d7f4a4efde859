"""Events through the service's handlers: stored notifications, dedup, coalescing, delivered events."""

import uuid
from datetime import timedelta

import pytest

from notifications.handlers import HANDLERS
from notifications.models import KnownHospital, Notification
from notifications.tests import factories
from notifications.tests.factories import CITY_GENERAL, ST_MARY
from shared_events import topics
from shared_events.django.models import OutboxEvent
from shared_events.envelope import parse_event

pytestmark = pytest.mark.django_db
BANK = "bloodbank"


def handle(event):
    HANDLERS[event.type](event)
    return event


def delivered_events():
    rows = OutboxEvent.objects.filter(event_type=topics.NOTIFICATION_DELIVERED).order_by("id")
    return [parse_event(bytes(row.value)) for row in rows]


def test_the_service_handles_every_bank_and_hospital_event_type_and_not_its_own():
    assert set(HANDLERS) == {
        topics.REQUESTED,
        topics.CANCELLED,
        topics.APPROVED,
        topics.REJECTED,
        topics.RELEASED,
        topics.INVENTORY_UPDATED,
        topics.LOW_STOCK,
        topics.UNITS_DISPATCHED,
        topics.UNITS_RECEIVED,
        topics.UNIT_FATE,
        topics.FATE_OVERDUE,
        topics.RECALL_ISSUED,
        topics.RECALL_ACKNOWLEDGED,
        topics.MTP_PACK_REQUESTED,
        topics.MTP_STOPPED,
    }
    # The topic registry says which topics this service consumes: the handlers are exactly those.
    assert set(HANDLERS) == {name for name, spec in topics.TOPICS.items() if "notification" in spec.consumers}


def test_a_request_s_life_notifies_the_hospital_and_the_bank_with_the_request_id():
    request = handle(factories.requested())
    request_id = request.data.request_id
    approval = handle(factories.approved(request_id=request_id))
    handle(factories.cancelled(request_id=request_id))
    handle(factories.released(request_id=request_id))
    rows = Notification.objects.filter(request_id=request_id)
    assert sorted(rows.values_list("audience", "kind", "severity")) == sorted(
        [
            (ST_MARY.audience, "REQUEST_CREATED", "INFO"),
            (BANK, "REQUEST_CREATED", "CRITICAL"),
            (ST_MARY.audience, "REQUEST_APPROVED", "INFO"),
            (ST_MARY.audience, "REQUEST_CANCELLED", "INFO"),
            (BANK, "REQUEST_CANCELLED", "INFO"),
            (ST_MARY.audience, "ALLOCATION_RELEASED", "INFO"),
        ]
    )
    approved = rows.get(kind="REQUEST_APPROVED")
    assert approved.title == "Approved: 2 units O+ red cells"
    assert approved.source_event_type == topics.APPROVED
    assert approved.source_event_id == approval.id
    assert approved.correlation_id == approval.correlation_id


@pytest.mark.parametrize(("groups", "kind"), [(("O+",), "REQUEST_PARTIALLY_APPROVED")])
def test_a_partial_supply_and_a_rejection_reach_only_the_requesting_hospital(groups, kind):
    first = handle(factories.requested(hospital=CITY_GENERAL)).data.request_id
    second = handle(factories.requested(hospital=CITY_GENERAL, priority="SCHEDULED")).data.request_id
    handle(factories.approved(request_id=first, hospital=CITY_GENERAL, groups=groups))
    handle(factories.rejected(request_id=second, hospital=CITY_GENERAL, reason_code="NO_COMPATIBLE_UNITS"))
    partial = Notification.objects.get(request_id=first, kind=kind)
    rejection = Notification.objects.get(request_id=second, kind="REQUEST_REJECTED")
    assert (partial.audience, partial.severity) == (CITY_GENERAL.audience, "WARNING")
    assert (rejection.audience, rejection.severity) == (CITY_GENERAL.audience, "WARNING")
    assert "no compatible units in stock" in rejection.body
    assert not Notification.objects.filter(audience=ST_MARY.audience).exists()


def test_the_same_event_delivered_twice_makes_one_notification_per_audience_and_one_delivered_event():
    event = factories.requested()
    handle(event)
    handle(parse_event(event.envelope.to_bytes()))
    assert Notification.objects.filter(source_event_id=event.id).count() == 2  # hospital + bank
    assert len(delivered_events()) == 2


def test_a_request_republished_by_the_hospital_watchdog_is_not_announced_again():
    first = handle(factories.requested())
    handle(factories.requested(request_id=first.data.request_id))  # same request, new event id
    assert Notification.objects.filter(request_id=first.data.request_id).count() == 2


def test_each_stored_notification_is_published_as_delivered_in_its_transaction():
    event = handle(factories.requested())
    published = {e.data.notification_id: e for e in delivered_events()}
    notifications = Notification.objects.filter(source_event_id=event.id)
    assert set(published) == {n.id for n in notifications}
    for notification in notifications:
        delivered = published[notification.id]
        assert delivered.subject == str(notification.id)  # the key is the notification id
        assert delivered.data.audience == notification.audience
        assert delivered.data.channel == "in_app"
        assert delivered.data.source_event_id == event.id
        assert delivered.data.source_event_type == topics.REQUESTED
        assert delivered.correlation_id == event.correlation_id


def test_a_stock_crossing_fans_out_to_every_known_hospital_with_one_delivered_event_each():
    factories.hospital_user(ST_MARY)  # known from its user
    handle(factories.requested(hospital=CITY_GENERAL))  # known from a request event
    other = type(ST_MARY)(name="Other Hospital", username="other_staff")
    handle(factories.released(request_id=uuid.uuid4(), hospital=other))  # known from any request-scoped event
    assert KnownHospital.objects.count() == 3
    event = handle(factories.low_stock(level="CRITICAL", available=3))
    rows = Notification.objects.filter(source_event_id=event.id)
    assert rows.count() == 4
    assert set(rows.values_list("kind", "severity")) == {("STOCK_CRITICAL", "CRITICAL")}
    assert set(rows.values_list("audience", flat=True)) == {
        ST_MARY.audience,
        CITY_GENERAL.audience,
        other.audience,
        BANK,
    }
    assert {e.data.audience for e in delivered_events() if e.data.source_event_id == event.id} == set(
        rows.values_list("audience", flat=True)
    )


def test_inventory_updates_are_coalesced_into_one_unread_notification_per_component_and_group():
    first = handle(factories.inventory_updated(available=12))
    handle(factories.inventory_updated(available=11))
    a_plus = handle(factories.inventory_updated(available=5, group="A+"))
    latest = handle(factories.inventory_updated(available=10, level="LOW"))
    o_pos = Notification.objects.get(kind="INVENTORY_UPDATED", blood_group="O+")
    assert o_pos.audience == BANK
    assert o_pos.title == "Stock O+ red cells: 10 units available"
    assert o_pos.severity == "WARNING"
    assert o_pos.source_event_id == latest.id
    assert Notification.objects.filter(kind="INVENTORY_UPDATED").count() == 2
    # delivered once per notification, not per in-place update
    assert [e.data.source_event_id for e in delivered_events()] == [first.id, a_plus.id]


def test_an_update_moves_the_coalesced_notification_up_the_live_feed():
    handle(factories.inventory_updated(available=12))
    before = Notification.objects.get(kind="INVENTORY_UPDATED").feed_seq
    handle(factories.requested())
    handle(factories.inventory_updated(available=11))
    after = Notification.objects.get(kind="INVENTORY_UPDATED").feed_seq
    assert after > Notification.objects.exclude(kind="INVENTORY_UPDATED").order_by("-feed_seq")[0].feed_seq > before


def test_once_the_stock_notice_is_read_the_next_change_starts_a_new_unread_one():
    handle(factories.inventory_updated(available=12))
    Notification.objects.update(read_at=factories.now())
    handle(factories.inventory_updated(available=11))
    assert Notification.objects.filter(kind="INVENTORY_UPDATED").count() == 2
    assert Notification.objects.get(kind="INVENTORY_UPDATED", read_at=None).title.endswith("11 units available")
    assert len(delivered_events()) == 2


def test_an_older_stock_count_arriving_late_does_not_overwrite_a_newer_one():
    now = factories.now()
    handle(factories.inventory_updated(available=9, as_of=now))
    handle(factories.inventory_updated(available=15, as_of=now - timedelta(minutes=1)))
    assert Notification.objects.get(kind="INVENTORY_UPDATED").title.endswith("9 units available")


def test_an_older_stock_count_arriving_after_the_newer_one_was_read_starts_no_new_notice():
    now = factories.now()
    handle(factories.inventory_updated(available=9, as_of=now))
    Notification.objects.update(read_at=now)
    handle(factories.inventory_updated(available=15, as_of=now - timedelta(minutes=1)))
    (shown,) = Notification.objects.values_list("title", "read_at")
    assert shown == ("Stock O+ red cells: 9 units available", now)
    assert len(delivered_events()) == 1


def test_a_stock_count_handled_again_changes_nothing():
    now = factories.now()
    first = factories.inventory_updated(available=9, as_of=now)
    second = factories.inventory_updated(available=8, as_of=now + timedelta(seconds=1))
    for event in (first, second):
        handle(event)
    shown = Notification.objects.get()
    for event in (first, second):
        handle(event)
    again = Notification.objects.get()
    assert (again.source_event_id, again.title, again.feed_seq, again.updated_at) == (
        second.id,
        "Stock O+ red cells: 8 units available",
        shown.feed_seq,
        shown.updated_at,
    )


def test_a_decision_arriving_before_the_request_is_still_stored_with_its_request_id():
    request_id = uuid.uuid4()
    handle(factories.rejected(request_id=request_id))
    rejection = Notification.objects.get(request_id=request_id)
    assert rejection.title == f"Rejected: request {str(request_id)[:8]}"
    assert rejection.component is None
