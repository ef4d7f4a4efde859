"""Writes: turn events into notifications, mark them read, escalate unread critical ones.

Every write that stores or changes a notification first locks the feed counter
(``FeedSequence``) and takes the next ``feed_seq`` under that lock, so the live
feed's order is commit order. ``notification.delivered`` is written to the
outbox in the same transaction as the notification it reports.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import cache, partial
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Exists, Field, Model, OuterRef, Q
from django.utils import timezone

from notifications.models import (
    FeedSequence,
    Kind,
    KnownHospital,
    KnownRequest,
    Notification,
    Recipient,
    Severity,
)
from notifications.rules import PlannedNotification, RequestFacts, escalation_text, plan_notifications
from shared_events import schemas, topics
from shared_events.django import batch
from shared_events.django.outbox import buffered, publish
from shared_events.django.prepared import Prepared, execute, insert, save_fields
from shared_events.envelope import Event

log = logging.getLogger(__name__)

FEED = "notifications"
STOCK_CROSSINGS = (Kind.STOCK_LOW, Kind.STOCK_CRITICAL, Kind.STOCK_RECOVERED)
ESCALATION_BATCH = 200


# -- the feed counter ------------------------------------------------------------------------------
_feed_row = Prepared(lambda: FeedSequence.objects.select_for_update().filter(name=FEED).order_by("pk")[:1])


class FeedCounter:
    """The feed counter, locked until the surrounding transaction ends (serialises notification writes).

    In a consumer batch the lock is taken once for all its events and the new value is
    written once, at the end of the batch (``shared_events.django.batch``); elsewhere
    each ``next()`` writes at once.
    """

    def __init__(self, *, deferred: bool = False) -> None:
        self.row = _feed_row.first() or _new_feed_row()
        self.deferred = deferred
        self.written = self.row.value

    def peek(self) -> int:
        """The number the next notification will take."""
        return self.row.value + 1

    def next(self) -> int:
        return self.take(self.row.value + 1)

    def take(self, seq: int) -> int:
        """Move the counter up to ``seq``, a number handed out by ``peek`` (and later ones) and now stored."""
        self.row.value = max(self.row.value, seq)
        if not self.deferred:
            self.write()
        return self.row.value

    def write(self) -> None:
        if self.row.value != self.written:
            save_fields(self.row, ["value"])
            self.written = self.row.value


def _new_feed_row() -> FeedSequence:
    """The counter row of a new database, inserted (and so locked) by this transaction.

    As ``get_or_create`` would, a row another transaction inserted meanwhile is read (locked) once it commits.
    """
    row = FeedSequence(name=FEED)
    if _insert_unless_present(row):
        return row
    found = _feed_row.first()
    if found is None:
        raise FeedSequence.DoesNotExist(f"feed counter {FEED!r}: neither inserted nor found")
    return found


def _lock_feed() -> FeedCounter:
    return batch.shared(FEED, partial(FeedCounter, deferred=True), finish=FeedCounter.write) or FeedCounter()


# -- events in -------------------------------------------------------------------------------------
def notify_for_event(*, event: Event) -> list[Notification]:
    """Store the notifications ``event`` produces, each at most once per audience.

    Returns the notifications created (a stock count updated in place is not among them).
    Safe to call again with the same event: nothing changes the second time.
    """
    with transaction.atomic(savepoint=False):  # joins the consumer's transaction; a failure undoes it all
        feed = _lock_feed()
        writes = _EventWrites(feed)
        facts = _remember(event, writes)
        plans = plan_notifications(
            event_type=event.type,
            data=event.data,
            occurred_at=event.time,
            request=facts or _request_facts(getattr(event.data, "request_id", None)),
            hospital_audiences=[h.audience for h in _all_hospitals.all()] if event.type == topics.LOW_STOCK else (),
        )
        for plan in plans:
            _store(plan, event=event, feed=feed, writes=writes)
        return writes.finish()


class _EventWrites:
    """The inserts of one event, sent in one statement on PostgreSQL 15+ (each alone elsewhere).

    A request's facts, its hospital and the event's new notifications are each an
    ``INSERT ... ON CONFLICT`` (a unique index answers "already there" or "told already",
    no read first); together they are one round trip instead of up to four. A
    notification takes its feed number when it is planned (``peek``, then the next
    ones); one that turns out to be told already leaves its number unused, as feed
    numbers of other audiences already do, and the counter moves to the last one stored.
    """

    def __init__(self, feed: FeedCounter) -> None:
        self.feed = feed
        self.together = connection.features.supports_nulls_distinct_unique_constraints
        self.pending: list[tuple[Model, str]] = []
        self.stored: list[Notification] = []

    def insert(self, obj: Model, *, on_conflict: str = "DO NOTHING") -> None:
        if self.together:
            self.pending.append((obj, on_conflict))
        else:
            _insert_unless_present(obj, on_conflict=on_conflict)

    def next_feed_seq(self) -> int:
        """The feed number of a notification about to be inserted: after those already waiting."""
        waiting = sum(isinstance(obj, Notification) for obj, _ in self.pending)
        return self.feed.peek() + waiting

    def notification(self, notification: Notification) -> None:
        """Insert ``notification`` unless told already (then it is not stored, and nothing is published)."""
        if self.together:
            self.pending.append((notification, "DO NOTHING"))
            return
        notification.save(force_insert=True)  # "told already" was asked first (_store)
        self._stored(notification)

    def flush(self) -> None:
        """Send what waits (before anything that reads the feed counter or the rows)."""
        pending, self.pending = self.pending, []
        if not pending:
            return
        for (obj, _), inserted in zip(pending, _insert_each_unless_present(pending), strict=True):
            if inserted and isinstance(obj, Notification):
                self._stored(obj)

    def finish(self) -> list[Notification]:
        self.flush()
        return self.stored

    def _stored(self, notification: Notification) -> None:
        self.feed.take(notification.feed_seq)
        _publish_delivered(notification)
        self.stored.append(notification)


def _remember(event: Event, writes: _EventWrites) -> RequestFacts | None:
    """Keep what later texts and stock fan-out need: the request's facts and the hospitals seen.

    Returns a new request's facts, as stored (a repeat of the event keeps the first row, with the
    same facts: a request never changes).
    """
    data = event.data
    if isinstance(data, schemas.BloodRequestedV1 | schemas.BloodRequestedV2):
        data = schemas.requested_v2(data)  # v2: an MTP has no component or units; the group may be UNKNOWN
        # One INSERT ... ON CONFLICT DO NOTHING (a repeat keeps the first), no read and no savepoint.
        known = KnownRequest(
            request_id=data.request_id,
            hospital_id=data.hospital_id,
            hospital_name=data.hospital_name,
            blood_group=str(getattr(data.blood_group, "value", data.blood_group)),
            protocol=data.protocol.value,
            component=data.component.value if data.component else None,
            units=data.units,
            priority=data.priority.value,
            requested_at=data.requested_at,
        )
        writes.insert(known)
        facts = _facts(known)
        # A known request never changes: its decision in the same batch need not read it back.
        remembered = batch.shared("known-requests", dict)
        if remembered is not None:
            remembered[known.request_id] = facts
        register_hospital(hospital_id=data.hospital_id, name=data.hospital_name, writes=writes)
        return facts
    if hasattr(data, "hospital_id"):
        register_hospital(hospital_id=data.hospital_id, writes=writes)
    return None


def register_hospital(*, hospital_id: UUID, name: str = "", writes: _EventWrites | None = None) -> None:
    """Record a hospital (idempotent); a later call with a name fills in a missing one.

    In a consumer batch, a hospital already recorded (with its name) by an earlier event is not asked again.
    With ``writes``, the insert goes with the event's other inserts.
    """
    seen = batch.shared("known-hospitals", set)
    if seen is not None:
        if (hospital_id, bool(name)) in seen or (hospital_id, True) in seen:
            return
        seen.add((hospital_id, bool(name)))
    insert = writes.insert if writes is not None else _insert_unless_present
    if not name:
        # Nothing to fill in: one insert that is a no-op for a hospital already known (no read, no savepoint).
        insert(KnownHospital(id=hospital_id, name=name))
        return
    # One statement, no read: a new hospital is inserted, a known one without a name gets this one, and a
    # known one with a name keeps it (a hospital inserted meanwhile by another transaction is waited for).
    insert(KnownHospital(id=hospital_id, name=name), on_conflict=_FILL_IN_NAME)


_FILL_IN_NAME = "(id) DO UPDATE SET name = EXCLUDED.name WHERE notifications_knownhospital.name = ''"


_all_hospitals = Prepared(lambda: KnownHospital.objects.all())  # Meta.ordering: the fan-out's order
_known_request = Prepared(
    lambda request_id: KnownRequest.objects.filter(request_id=request_id).order_by("pk")[:1], request_id=UUID
)


def _request_facts(request_id: UUID | None) -> RequestFacts | None:
    if request_id is None:
        return None
    remembered = batch.shared("known-requests", dict)
    if remembered is not None and request_id in remembered:
        return remembered[request_id]
    known = _known_request.first(request_id=request_id)
    if known is None:
        return None  # events of one request travel on different topics: the decision may come first
    return _facts(known)


def _facts(known: KnownRequest) -> RequestFacts:
    return RequestFacts(
        request_id=known.request_id,
        hospital_id=known.hospital_id,
        hospital_name=known.hospital_name,
        blood_group=known.blood_group,
        component=known.component,
        units=known.units,
        priority=known.priority,
        protocol=known.protocol,
    )


def _store(plan: PlannedNotification, *, event: Event, feed: FeedCounter, writes: _EventWrites) -> None:
    if plan.coalesce:
        writes.flush()  # a count updated in place takes the next feed number now
        _coalesce(plan, event=event, feed=feed, writes=writes)
        return
    if not connection.features.supports_nulls_distinct_unique_constraints:
        # Told already (both unique indexes; PostgreSQL 15+ lets _create's insert ask them): this event
        # was already turned into this notification, or the same fact about the same request came under
        # a new event id (e.g. the hospital's watchdog re-publishing a still-pending request).
        told = Q(source_event_id=event.id)
        if plan.request_id is not None:
            told |= Q(request_id=plan.request_id, pack=plan.pack)  # pack None: IS NULL
        if Notification.objects.filter(told, audience=plan.audience, kind=plan.kind).exists():
            return
    _create(plan, event=event, writes=writes)


def _create(plan: PlannedNotification, *, event: Event, writes: _EventWrites) -> None:
    # On PostgreSQL 15+ an insert where a check and an insert would be two: the two unique indexes
    # (source_event_id / request_id and pack, per audience and kind; a null pack equal to a null pack)
    # are exactly the "told already" rule.
    writes.notification(
        Notification(
            audience=plan.audience,
            kind=plan.kind,
            request_id=plan.request_id,
            pack=plan.pack,
            component=plan.component,
            blood_group=plan.blood_group,
            feed_seq=writes.next_feed_seq(),
            **_content(plan, event=event),
        )
    )


def _content(plan: PlannedNotification, *, event: Event) -> dict[str, object]:
    """What a notification says and which event said it: set when it is created and when a count is updated."""
    return {
        "severity": plan.severity,
        "title": plan.title[:200],
        "body": plan.body,
        "source_event_id": event.id,
        "source_event_type": event.type,
        "correlation_id": event.correlation_id[:100],
        "occurred_at": plan.occurred_at,
    }


def _insert_each_unless_present(items: list[tuple[Model, str]]) -> list[bool]:
    """``_insert_unless_present`` of each (object, conflict clause), in one statement (PostgreSQL); which were written.

    Foreign keys are checked at the commit (Django makes them deferrable), so the rows may refer to each other.
    """
    if len(items) == 1:
        ((obj, on_conflict),) = items
        return [_insert_unless_present(obj, on_conflict=on_conflict)]
    db = connections[DEFAULT_DB_ALIAS]
    values = [
        field.get_db_prep_save(field.pre_save(obj, True), db) for obj, _ in items for field in obj._meta.concrete_fields
    ]
    with db.cursor() as cursor:
        execute(cursor, _insert_each_sql(tuple((type(obj), on_conflict) for obj, on_conflict in items)), values)
        written = [count == 1 for count in cursor.fetchone()]
    for (obj, _), inserted in zip(items, written, strict=True):
        obj._state.adding = not inserted
    return written


@cache
def _insert_each_sql(shapes: tuple[tuple[type[Model], str], ...]) -> str:
    """``WITH i0 AS (INSERT ... RETURNING 1), ... SELECT`` the rows each wrote (0 or 1), in order."""
    inserts = ", ".join(
        f"i{index} AS ({_insert_unless_present_sql(model, on_conflict)} RETURNING 1)"
        for index, (model, on_conflict) in enumerate(shapes)
    )
    # Built from _insert_unless_present_sql and the CTEs' own names only; every value is a query parameter.
    counts = ", ".join(f"(SELECT count(*) FROM i{index})" for index in range(len(shapes)))  # noqa: S608
    return f"WITH {inserts} SELECT {counts}"


@cache
def _insert_unless_present_sql(model: type[Model], on_conflict: str) -> str:
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    # Identifiers come from the model, the conflict clause from this module; every value is a query parameter.
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT {on_conflict}"
    )


def _insert_unless_present(obj: Model, *, on_conflict: str = "DO NOTHING") -> bool:
    """Insert ``obj`` unless a unique index already holds it (no error, no savepoint); True if inserted.

    ``on_conflict`` (a constant of this module) may update the row already there instead (then True
    means a row was written, inserted or updated).
    Its statement is built once per model: the ORM's ``bulk_create(ignore_conflicts=True)``
    or ``get_or_create`` spent more CPU building theirs than the database takes to run it.
    """
    db = connections[DEFAULT_DB_ALIAS]  # not the proxy: each field's preparation asks it for its features
    values = [field.get_db_prep_save(field.pre_save(obj, True), db) for field in obj._meta.concrete_fields]
    with db.cursor() as cursor:
        execute(cursor, _insert_unless_present_sql(type(obj), on_conflict), values)
        inserted = cursor.rowcount == 1
    obj._state.adding = not inserted
    return inserted


def _coalesce(plan: PlannedNotification, *, event: Event, feed: FeedCounter, writes: _EventWrites) -> None:
    """Keep one unread notification per audience and stock key, showing the latest count.

    A new notification is stored (and returned by ``notify_for_event``); a count updated in place is not.
    """
    # Updated in place (a unique index keeps one unread row per key): the audience was already told about this
    # stock key, so no new ``notification.delivered``; the new feed_seq puts the fresh count on the live feed.
    if _update_unless_told(plan, event=event, feed_seq=feed.peek()):
        feed.next()
        return
    # This event was stored already, or a newer count is already shown (or was read): an old one must not come back.
    if _told(plan, event=event):
        return
    _create(plan, event=event, writes=writes)


def _update_unless_told(plan: PlannedNotification, *, event: Event, feed_seq: int) -> bool:
    """Show this count in the stock key's unread notification, unless ``_told``; True if it was updated.

    One UPDATE where the ORM sent two statements (the check, then the update) and built both each time.
    """
    db = connections[DEFAULT_DB_ALIAS]
    values = {**_content(plan, event=event), "feed_seq": feed_seq, "updated_at": timezone.now()}
    params = [_field(name).get_db_prep_save(value, db) for name, value in values.items()]
    params += _key_params(plan) + _told_params(plan, event, db)
    with db.cursor() as cursor:
        execute(cursor, _update_unless_told_sql(tuple(values), _shape(plan)), params)
        return cursor.rowcount > 0


def _told(plan: PlannedNotification, *, event: Event) -> bool:
    """A notification of the plan's stock key (read or not) came from this event or shows a newer count."""
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        execute(cursor, _told_sql(_shape(plan), limit=True), _told_params(plan, event, db))
        return cursor.fetchone() is not None


def _field(name: str) -> Field:
    return Notification._meta.get_field(name)


def _column(name: str, alias: str) -> str:
    return f"{alias}.{connection.ops.quote_name(_field(name).column)}"


_Shape = tuple[str, bool, bool]


def _shape(plan: PlannedNotification) -> _Shape:
    """What the statements of a stock key are built for: its kind, and whether its component and group are None
    (SQL then says IS NULL, as the ORM's ``=None`` does)."""
    return plan.kind, plan.component is None, plan.blood_group is None


def _key_sql(alias: str, shape: _Shape) -> str:
    """Row ``alias`` has the stock key of ``_key_params``.

    The kind is written in the statement, not passed: a prepared statement's generic plan can then use the
    unique index of unread stock notices (its condition names the kind); with a parameter it scanned every
    unread notification of the audience (16 ms at 50,000 rows, against 0.02 ms).
    """
    kind, component_null, group_null = shape
    if kind not in Kind.values:  # a literal only from the model's own choices, never from outside
        raise ValueError(f"not a notification kind: {kind!r}")
    key = [
        f"{_column('audience', alias)} = %s",
        f"{_column('kind', alias)} = '{kind}'",
        f"{_column('component', alias)} {'IS NULL' if component_null else '= %s'}",
        f"{_column('blood_group', alias)} {'IS NULL' if group_null else '= %s'}",
    ]
    return " AND ".join(key)


def _key_params(plan: PlannedNotification) -> list[object]:
    return [value for value in (plan.audience, plan.component, plan.blood_group) if value is not None]


def _told_params(plan: PlannedNotification, event: Event, db: BaseDatabaseWrapper) -> list[object]:
    return [
        *_key_params(plan),
        _field("source_event_id").get_db_prep_value(event.id, db),
        _field("occurred_at").get_db_prep_value(plan.occurred_at, db),
    ]


@cache
def _told_sql(shape: _Shape, *, limit: bool = False) -> str:
    """The rows of ``_told`` (alias ``seen``; the first only with ``limit``); parameters: ``_told_params``."""
    table = connection.ops.quote_name(Notification._meta.db_table)
    this_or_newer = f"{_column('source_event_id', 'seen')} = %s OR {_column('occurred_at', 'seen')} > %s"
    # Identifiers come from the model; every value but the kind (see _key_sql) is a query parameter.
    sql = f"SELECT 1 FROM {table} seen WHERE {_key_sql('seen', shape)} AND ({this_or_newer})"  # noqa: S608
    return f"{sql} LIMIT 1" if limit else sql


@cache
def _update_unless_told_sql(fields: tuple[str, ...], shape: _Shape) -> str:
    """Parameters: the ``fields``' new values, ``_key_params`` and ``_told_params``."""
    table = connection.ops.quote_name(Notification._meta.db_table)
    assignments = ", ".join(f"{connection.ops.quote_name(_field(name).column)} = %s" for name in fields)
    # Identifiers come from the model; every value but the kind (see _key_sql) is a query parameter.
    return (
        f"UPDATE {table} SET {assignments} "  # noqa: S608
        f"WHERE {_key_sql(table, shape)} AND {_column('read_at', table)} IS NULL AND NOT EXISTS ({_told_sql(shape)})"
    )


def _publish_delivered(notification: Notification) -> None:
    publish(
        topics.NOTIFICATION_DELIVERED,
        schemas.NotificationDeliveredV1(
            notification_id=notification.id,
            audience=notification.audience,
            channel="in_app",
            source_event_id=notification.source_event_id,
            source_event_type=notification.source_event_type,
            delivered_at=notification.created_at,
        ),
        subject=str(notification.id),
        correlation_id=notification.correlation_id or None,
    )


# -- readers' actions ------------------------------------------------------------------------------
def mark_read(*, audience: str, notification_id: UUID) -> Notification:
    """Mark one of ``audience``'s notifications read (idempotent); reading an escalation reads its original.

    Raises ``Notification.DoesNotExist`` for an id of another audience.
    """
    with transaction.atomic():
        notification = Notification.objects.select_for_update().get(id=notification_id, audience=audience)
        if notification.read_at is None:
            now = timezone.now()
            notification.read_at = now
            notification.save(update_fields=["read_at", "updated_at"])
            if notification.escalation_of_id is not None:
                Notification.objects.filter(id=notification.escalation_of_id, read_at__isnull=True).update(
                    read_at=now, updated_at=now
                )
        return notification


def mark_all_read(*, audience: str) -> int:
    """Mark every unread notification of ``audience`` read; return how many changed."""
    now = timezone.now()
    with transaction.atomic():
        return Notification.objects.filter(audience=audience, read_at__isnull=True).update(read_at=now, updated_at=now)


def register_recipient(*, user: AbstractBaseUser, audience: str) -> Recipient:
    """Give ``user`` its one audience (replacing any other) and know its hospital for stock alerts."""
    Recipient(user=user, audience=audience).full_clean(validate_unique=False)
    with transaction.atomic():
        recipient, _ = Recipient.objects.update_or_create(user=user, defaults={"audience": audience})
        if audience.startswith("hospital:"):
            register_hospital(hospital_id=UUID(audience.removeprefix("hospital:")))
        return recipient


# -- escalation (periodic, in the worker) ------------------------------------------------------------
def escalate_unread_critical(*, now: datetime | None = None) -> list[Notification]:
    """Re-raise, once, every CRITICAL notification unread for ``ESCALATE_AFTER_SECONDS``.

    Except a critical stock alert whose stock key has crossed again since
    (it recovered or went back to LOW): that alert is no longer current.

    Each escalation is a new ``ESCALATION`` notification to the same audience
    (published as delivered); the original records ``escalated_at``. Safe to
    run from several workers at once: rows are claimed with ``SKIP LOCKED``.
    """
    now = now or timezone.now()
    after = float(settings.ESCALATE_AFTER_SECONDS)
    later_crossing = Notification.objects.filter(
        audience=OuterRef("audience"),
        component=OuterRef("component"),
        blood_group=OuterRef("blood_group"),
        kind__in=STOCK_CROSSINGS,
        occurred_at__gt=OuterRef("occurred_at"),
    )
    due = (
        Notification.objects.filter(
            severity=Severity.CRITICAL,
            read_at__isnull=True,
            escalated_at__isnull=True,
            created_at__lte=now - timedelta(seconds=after),
        )
        .exclude(kind=Kind.ESCALATION)
        # A critical stock alert already followed by another crossing (LOW, RECOVERED) is history, not news.
        .exclude(Q(kind__in=STOCK_CROSSINGS) & Exists(later_crossing))
        .order_by("feed_seq")
    )
    if not due.exists():
        return []  # the common case, checked without taking the feed lock
    with transaction.atomic(), buffered():
        feed = _lock_feed()
        originals = list(due.select_for_update(skip_locked=True)[:ESCALATION_BATCH])
        if not originals:
            return []  # every due one is being escalated by another worker
        # In bulk, a handful of statements whatever the count: this runs in the worker's consumer loop,
        # and one statement per row (four per escalation) held the notifications of a surge back.
        first = feed.peek()
        escalations = [
            _escalation_of(original, unread_for_seconds=after, now=now, feed_seq=first + number)
            for number, original in enumerate(originals)
        ]
        insert(escalations)
        feed.take(escalations[-1].feed_seq)
        Notification.objects.filter(pk__in=[original.pk for original in originals]).update(
            escalated_at=now,
            updated_at=timezone.now(),  # when the row changed, as auto_now would set it
        )
        for original, escalation in zip(originals, escalations, strict=True):
            _publish_delivered(escalation)
            log.info("escalated unread critical notification %s for %s", original.id, original.audience)
    return escalations


def _escalation_of(original: Notification, *, unread_for_seconds: float, now: datetime, feed_seq: int) -> Notification:
    title, body = escalation_text(title=original.title, unread_for_seconds=unread_for_seconds)
    return Notification(
        audience=original.audience,
        kind=Kind.ESCALATION,
        severity=Severity.CRITICAL,
        title=title,
        body=body,
        source_event_id=original.source_event_id,
        source_event_type=original.source_event_type,
        correlation_id=original.correlation_id,
        request_id=original.request_id,
        pack=original.pack,
        component=original.component,
        blood_group=original.blood_group,
        occurred_at=now,  # the new fact: it has gone unread this long
        escalation_of=original,
        feed_seq=feed_seq,
    )
