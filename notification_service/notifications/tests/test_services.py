"""Escalation of unread critical notifications, reading, recipients."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from notifications import services
from notifications.handlers import HANDLERS
from notifications.models import FeedSequence, Kind, KnownHospital, KnownRequest, Notification, Recipient
from notifications.rules import PlannedNotification
from notifications.tests import factories
from notifications.tests.factories import ST_MARY
from shared_events import topics
from shared_events.demo import BANK_ADMIN, HOSPITALS, demo_password
from shared_events.django.batch import scope
from shared_events.django.models import OutboxEvent
from shared_events.envelope import parse_event
from shared_events.topics import topic_name

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def five_minutes(settings):
    settings.ESCALATE_AFTER_SECONDS = 300


def handle(event):
    HANDLERS[event.type](event)
    return event


def _emergency_at_bank():
    event = handle(factories.requested())
    return Notification.objects.get(source_event_id=event.id, audience="bloodbank")


def test_an_unread_critical_notification_is_escalated_once_after_the_configured_time():
    original = _emergency_at_bank()
    assert services.escalate_unread_critical(now=original.created_at + timedelta(seconds=299)) == []
    later = original.created_at + timedelta(seconds=301)
    (escalation,) = services.escalate_unread_critical(now=later)
    assert services.escalate_unread_critical(now=later + timedelta(hours=1)) == []
    original.refresh_from_db()
    assert original.escalated_at == later
    assert (escalation.kind, escalation.severity, escalation.audience) == ("ESCALATION", "CRITICAL", "bloodbank")
    assert escalation.escalation_of == original
    assert escalation.request_id == original.request_id
    assert escalation.title == f"Still unread: {original.title}"
    assert "5 minutes" in escalation.body
    assert escalation.feed_seq > original.feed_seq
    assert escalation.occurred_at == later  # lists above the original it re-raises


def test_an_escalation_is_published_as_delivered():
    original = _emergency_at_bank()
    (escalation,) = services.escalate_unread_critical(now=original.created_at + timedelta(minutes=6))
    rows = OutboxEvent.objects.filter(event_type=topics.NOTIFICATION_DELIVERED, key=str(escalation.id))
    (delivered,) = [parse_event(bytes(r.value)) for r in rows]
    assert delivered.data.audience == "bloodbank"
    assert delivered.data.source_event_id == original.source_event_id


def test_a_surge_of_unread_critical_notifications_is_escalated_in_a_few_statements():
    # The escalation runs in the worker's consumer loop: a statement per row held every new notification back.
    originals = [_emergency_at_bank() for _ in range(12)]
    later = max(original.created_at for original in originals) + timedelta(minutes=6)
    counter_before = FeedSequence.objects.get().value
    with CaptureQueriesContext(connection) as queries:
        escalations = services.escalate_unread_critical(now=later)
    assert len(queries) <= 10, [query["sql"][:60] for query in queries]
    assert [escalation.escalation_of_id for escalation in escalations] == [original.id for original in originals]
    assert [escalation.feed_seq for escalation in escalations] == list(range(counter_before + 1, counter_before + 13))
    assert FeedSequence.objects.get().value == counter_before + 12
    assert Notification.objects.filter(kind=Kind.ESCALATION).count() == 12
    assert not Notification.objects.filter(pk__in=[o.id for o in originals], escalated_at__isnull=True).exists()
    delivered = OutboxEvent.objects.filter(
        event_type=topics.NOTIFICATION_DELIVERED, key__in=[str(e.id) for e in escalations]
    )
    assert delivered.count() == 12
    assert services.escalate_unread_critical(now=later + timedelta(hours=1)) == []


def test_a_critical_notification_read_in_time_is_not_escalated_and_others_never_are():
    original = _emergency_at_bank()
    services.mark_read(audience="bloodbank", notification_id=original.id)
    assert services.escalate_unread_critical(now=original.created_at + timedelta(hours=2)) == []
    assert not Notification.objects.filter(kind=Kind.ESCALATION).exists()  # the INFO ones neither


def test_a_critical_stock_alert_is_escalated_to_every_hospital_unless_the_stock_recovered_first():
    factories.hospital_user(ST_MARY)
    critical = handle(factories.low_stock(level="CRITICAL", available=3))
    handle(factories.low_stock(level="CRITICAL", available=1, group="A-"))
    handle(factories.low_stock(level="RECOVERED", available=30, group="A-"))  # A- is fine again
    originals = Notification.objects.filter(kind="STOCK_CRITICAL")
    escalations = services.escalate_unread_critical(now=factories.now() + timedelta(minutes=6))
    assert {(e.audience, e.escalation_of.source_event_id) for e in escalations} == {
        ("bloodbank", critical.id),
        (ST_MARY.audience, critical.id),
    }
    assert originals.filter(blood_group="A-", escalated_at=None).count() == 2


def test_the_escalation_delay_comes_from_settings(settings):
    settings.ESCALATE_AFTER_SECONDS = 30
    original = _emergency_at_bank()
    assert len(services.escalate_unread_critical(now=original.created_at + timedelta(seconds=31))) == 1


def test_reading_the_escalation_also_reads_the_original():
    original = _emergency_at_bank()
    (escalation,) = services.escalate_unread_critical(now=original.created_at + timedelta(minutes=6))
    services.mark_read(audience="bloodbank", notification_id=escalation.id)
    original.refresh_from_db()
    assert original.read_at is not None


def test_another_audience_cannot_mark_a_notification_read():
    original = _emergency_at_bank()
    with pytest.raises(Notification.DoesNotExist):
        services.mark_read(audience=ST_MARY.audience, notification_id=original.id)
    original.refresh_from_db()
    assert original.read_at is None


def test_mark_all_read_counts_only_the_audience_s_unread_ones():
    handle(factories.requested())
    handle(factories.requested())
    assert services.mark_all_read(audience=ST_MARY.audience) == 2
    assert services.mark_all_read(audience=ST_MARY.audience) == 0
    assert Notification.objects.filter(audience="bloodbank", read_at=None).count() == 2


def test_a_recipient_audience_must_be_the_bank_or_a_hospital_uuid():
    user = factories.UserFactory()
    with pytest.raises(ValidationError):
        services.register_recipient(user=user, audience="hospital:not-a-uuid")
    hospital_id = uuid.uuid4()
    services.register_recipient(user=user, audience=f"hospital:{hospital_id}")
    assert KnownHospital.objects.filter(id=hospital_id).exists()


def test_seed_demo_creates_the_demo_users_once():
    call_command("seed_demo")
    snapshot = list(get_user_model().objects.order_by("username").values_list("username", "password", "is_staff"))
    call_command("seed_demo")
    assert list(get_user_model().objects.order_by("username").values_list("username", "password", "is_staff")) == (
        snapshot
    )
    audiences = dict(Recipient.objects.values_list("user__username", "audience"))
    assert audiences == {BANK_ADMIN: "bloodbank", **{h.username: h.audience for h in HOSPITALS}}
    assert get_user_model().objects.get(username=BANK_ADMIN).check_password(demo_password())
    assert get_user_model().objects.get(username=BANK_ADMIN).is_staff
    assert {h.name for h in KnownHospital.objects.all()} == {h.name for h in HOSPITALS}


def test_a_consumer_batch_takes_the_feed_lock_once_and_writes_the_counter_once():
    first = factories.requested()
    events = [first, factories.approved(request_id=first.data.request_id), factories.requested()]
    with CaptureQueriesContext(connection) as queries, transaction.atomic(), scope():
        for event in events:
            handle(event)
    sql = [_statement_text(q["sql"]) for q in queries.captured_queries]
    feed_sql = [text for text in sql if "notifications_feedsequence" in text]
    assert sum(sql.startswith("SELECT") for sql in feed_sql) == 1
    assert sum(sql.startswith("UPDATE") for sql in feed_sql) == 1
    seqs = list(Notification.objects.order_by("feed_seq").values_list("feed_seq", flat=True))
    assert len(seqs) >= 3
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no number taken twice or skipped
    assert FeedSequence.objects.get(name="notifications").value == seqs[-1]


def test_a_request_and_its_decision_in_one_batch_use_the_request_s_facts_without_reading_them_back():
    requested = factories.requested(blood_group="AB+")
    approved = factories.approved(request_id=requested.data.request_id, groups=("O+", "O+"))
    with CaptureQueriesContext(connection) as queries, transaction.atomic(), scope():
        handle(requested)
        handle(approved)
    sql = [_statement_text(q["sql"]) for q in queries.captured_queries]
    assert not [text for text in sql if text.startswith("SELECT") and "notifications_knownrequest" in text]
    told = Notification.objects.get(source_event_id=approved.id)
    # The facts were there: the requested group, and the allocated O+ named as its substitute.
    assert told.blood_group == "AB+"
    assert "Compatible substitutes: 2 units O+." in told.body


def test_an_event_s_rows_are_inserted_in_one_statement_and_a_told_one_leaves_the_counter_at_the_last_stored():
    requested = factories.requested()
    approved = factories.approved(request_id=requested.data.request_id)
    with CaptureQueriesContext(connection) as queries, transaction.atomic(), scope():
        handle(requested)
        handle(approved)
    sql = [_statement_text(q["sql"]) for q in queries.captured_queries]
    writes = [
        text
        for text in sql
        if text.startswith(("INSERT", "WITH")) and not any(t in text for t in ("shared_events_", "feedsequence"))
    ]
    assert len(writes) == 2, writes  # the request's facts, its hospital and its notice; then the decision's notices
    assert "notifications_knownrequest" in writes[0] and "notifications_knownhospital" in writes[0]
    assert KnownRequest.objects.filter(request_id=requested.data.request_id).exists()
    assert KnownHospital.objects.get(id=requested.data.hospital_id).name == requested.data.hospital_name
    stored = list(Notification.objects.order_by("feed_seq"))
    assert {n.source_event_id for n in stored} == {requested.id, approved.id}
    assert len(stored) >= 3  # the decision tells the hospital and the bank
    delivered = OutboxEvent.objects.filter(topic=topic_name(topics.NOTIFICATION_DELIVERED))
    assert sorted(str(n.id) for n in stored) == sorted(row.key for row in delivered)

    # The same decision under a new event id, with a notice told already for one audience only.
    Notification.objects.filter(source_event_id=approved.id).order_by("feed_seq").last().delete()
    before = FeedSequence.objects.get(name="notifications").value
    handle(factories.approved(request_id=requested.data.request_id))
    new = Notification.objects.filter(feed_seq__gt=before).get()  # the one deleted above, told again
    assert FeedSequence.objects.get(name="notifications").value == new.feed_seq


def _statement_text(sql: str) -> str:
    """The SQL of a query as logged; of a prepared statement's ``EXECUTE``, the statement's own text."""
    if not sql.startswith("EXECUTE "):
        return sql
    name = sql.removeprefix("EXECUTE ").split("(", 1)[0]
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE name = %s", [name])
        (statement,) = cursor.fetchone()
    return statement.split(" AS ", 1)[1]


def test_a_fact_told_already_takes_no_feed_number_and_publishes_nothing():
    event = factories.requested()
    handle(event)
    stored = Notification.objects.count()
    published = OutboxEvent.objects.count()
    again = factories.requested(request_id=event.data.request_id)  # the hospital's watchdog: same request, new id
    handle(again)
    assert Notification.objects.count() == stored
    assert OutboxEvent.objects.count() == published
    assert FeedSequence.objects.get(name="notifications").value == Notification.objects.latest("feed_seq").feed_seq


def test_a_hospital_s_name_is_filled_in_once_and_never_replaced():
    hospital_id = uuid.uuid4()
    services.register_hospital(hospital_id=hospital_id)
    services.register_hospital(hospital_id=hospital_id, name="St Elsewhere")
    services.register_hospital(hospital_id=hospital_id, name="Renamed")
    services.register_hospital(hospital_id=hospital_id)
    assert list(KnownHospital.objects.values_list("id", "name")) == [(hospital_id, "St Elsewhere")]
    named = uuid.uuid4()
    services.register_hospital(hospital_id=named, name="Named at once")
    assert KnownHospital.objects.get(id=named).name == "Named at once"


def test_a_coalesced_notice_without_a_stock_key_part_matches_null_as_null():
    """Only inventory updates coalesce, always with a component and group; a None part still means IS NULL."""
    now = factories.now()
    events = [factories.inventory_updated(available=n, as_of=now + timedelta(seconds=n)) for n in (1, 2)]
    plans = [
        PlannedNotification(
            audience="bloodbank",
            kind="INVENTORY_UPDATED",
            severity="INFO",
            title=f"count {n}",
            body="",
            occurred_at=now + timedelta(seconds=n),
            coalesce=True,
        )
        for n, event in zip((1, 2), events, strict=True)
    ]
    with transaction.atomic():
        feed = services.FeedCounter()
        writes = services._EventWrites(feed)
        for plan, event in zip(plans, events, strict=True):
            services._store(plan, event=event, feed=feed, writes=writes)
        services._store(plans[0], event=events[0], feed=feed, writes=writes)  # older: kept out
        writes.finish()
    assert list(Notification.objects.values_list("title", "component", "blood_group")) == [("count 2", None, None)]


def test_the_told_already_check_of_a_stock_count_reads_its_own_index_not_every_notice():
    # Updated in place on every stock event: without an index of its own the check read every notification of
    # the audience, a cost that grew with every request ever made.
    handle(factories.inventory_updated(available=5))
    handle(factories.requested())
    plan = PlannedNotification(
        audience="bloodbank",
        kind=Kind.INVENTORY_UPDATED,
        severity="INFO",
        title="t",
        body="b",
        occurred_at=factories.now(),
        component="RED_CELLS",
        blood_group="O+",
        coalesce=True,
    )
    event = factories.inventory_updated(available=4)
    sql = services._told_sql(services._shape(plan), limit=True)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a test table is small enough for a scan: ask for an index
        cursor.execute(f"EXPLAIN {sql}", services._told_params(plan, event, connection))
        plan_text = "\n".join(row[0] for row in cursor.fetchall())
    assert "notification_stock_count_idx" in plan_text, plan_text
