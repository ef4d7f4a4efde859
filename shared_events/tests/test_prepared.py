"""shared_events.django.prepared: a query's SQL built once, run with new values, the same rows as the ORM's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from shared_events.django.models import OutboxEvent
from shared_events.django.prepared import Prepared, execute, insert, save_fields, save_fields_and_insert
from tests.testapp.models import Effect

pytestmark = pytest.mark.django_db

by_subject_since = Prepared(
    lambda subject, since: Effect.objects.filter(subject=subject, created_at__gte=since).order_by("created_at", "id"),
    subject=str,
    since=datetime,
)
by_event_locked = Prepared(
    lambda event_id: Effect.objects.select_for_update().filter(event_id=event_id).order_by("pk")[:1],
    event_id=uuid.UUID,
)


def _effect(subject: str, event_type: str = "t") -> Effect:
    return Effect.objects.create(event_id=uuid.uuid4(), event_type=event_type, subject=subject)


def test_a_prepared_query_returns_what_the_orm_returns_for_each_new_value():
    a1, a2, b = _effect("a"), _effect("a"), _effect("b")
    since = datetime.now(UTC) - timedelta(minutes=1)
    for subject in ("a", "b", "c"):
        expected = list(Effect.objects.filter(subject=subject, created_at__gte=since).order_by("created_at", "id"))
        got = by_subject_since.all(subject=subject, since=since)
        assert got == expected
        assert [vars(x) | {"_state": None} for x in got] == [vars(x) | {"_state": None} for x in expected]
    assert by_subject_since.all(subject="a", since=since) == [a1, a2]
    assert by_subject_since.all(subject="a", since=datetime.now(UTC) + timedelta(minutes=1)) == []
    assert by_subject_since.all(subject="b", since=since)[0].created_at == b.created_at  # converted as the ORM does


def test_the_statement_is_the_orms_and_is_built_once():
    effect = _effect("x")
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert by_event_locked.first(event_id=effect.event_id) == effect
        assert by_event_locked.first(event_id=uuid.uuid4()) is None
    assert len(queries) == 2  # the PREPARE is not counted
    assert all(query["sql"].startswith("EXECUTE prepared_") for query in queries)
    assert str(effect.event_id) in queries[0]["sql"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%%testapp_effect%%'")
        assert any("FOR UPDATE" in statement for (statement,) in cursor.fetchall())


def test_the_builder_runs_once_per_connection():
    built = []

    def build(subject: str):
        built.append(subject)
        return Effect.objects.filter(subject=subject)

    query = Prepared(build, subject=str)
    _effect("y")
    assert [len(query.all(subject=s)) for s in ("y", "z", "y")] == [1, 0, 1]
    assert len(built) == 1


@pytest.mark.django_db(transaction=True)
def test_a_locking_query_is_refused_outside_a_transaction_every_time():
    with transaction.atomic():
        by_event_locked.first(event_id=uuid.uuid4())  # compiled
    for _ in range(2):
        with pytest.raises(TransactionManagementError):
            by_event_locked.first(event_id=uuid.uuid4())


def test_a_value_the_builder_transforms_is_refused_when_compiled():
    contains = Prepared(lambda subject: Effect.objects.filter(subject__icontains=subject), subject=str)
    with pytest.raises(ValueError, match="subject"):
        contains.all(subject="a")


def test_a_parameter_of_another_type_is_refused():
    with pytest.raises(TypeError):
        Prepared(lambda flag: Effect.objects.filter(id__gt=0), flag=bool).all(flag=True)


def test_save_fields_updates_only_those_fields_and_refuses_a_missing_row():
    effect = _effect("before", event_type="old")
    effect.subject, effect.event_type = "after", "new"
    save_fields(effect, ["subject"])
    effect.refresh_from_db()
    assert (effect.subject, effect.event_type) == ("after", "old")
    gone = _effect("gone")
    Effect.objects.filter(pk=gone.pk).delete()
    with pytest.raises(DatabaseError):
        save_fields(gone, ["subject"])


def test_insert_writes_every_row_in_one_statement_and_sets_generated_keys():
    rows = [
        OutboxEvent(topic="t", key=str(n), value=b"v", headers={"h": "1"}, event_type="e", event_id=uuid.uuid4())
        for n in range(3)
    ]
    with CaptureQueriesContext(connection) as queries:
        insert(rows)
    assert len(queries) == 1
    assert all(row.pk for row in rows)
    stored = list(OutboxEvent.objects.filter(pk__in=[row.pk for row in rows]).order_by("id"))
    expected = [(str(n), b"v", {"h": "1"}) for n in range(3)]
    assert [(row.key, bytes(row.value), row.headers) for row in stored] == expected
    assert insert([]) == []


def _outbox_row(key: str) -> OutboxEvent:
    return OutboxEvent(topic="t", key=key, value=b"v", headers={}, event_type="e", event_id=uuid.uuid4())


def test_save_fields_and_insert_update_a_row_and_insert_its_records_in_one_statement():
    effect = _effect("before", event_type="old")
    effect.subject, effect.event_type = "after", "new"
    rows = [_outbox_row("a"), _outbox_row("b")]
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        save_fields_and_insert(effect, ["subject"], rows, [])
    transaction_control = ("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT")
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(transaction_control)]
    assert len(statements) == 1, statements
    effect.refresh_from_db()
    assert (effect.subject, effect.event_type) == ("after", "old")
    assert rows[0].pk < rows[1].pk and not rows[0]._state.adding
    assert list(OutboxEvent.objects.filter(pk__in=[r.pk for r in rows]).values_list("key", flat=True)) == ["a", "b"]


def test_save_fields_and_insert_refuse_a_missing_row_and_its_records_go_with_the_transaction():
    gone = _effect("gone")
    Effect.objects.filter(pk=gone.pk).delete()
    with pytest.raises(DatabaseError), transaction.atomic():
        save_fields_and_insert(gone, ["subject"], [_outbox_row("orphan")])
    assert not OutboxEvent.objects.filter(key="orphan").exists()


@pytest.mark.django_db(transaction=True)
def test_a_statement_is_prepared_once_per_session_and_again_after_a_reconnect():
    sql = "SELECT %s::int + %s::int, '100%%'"
    with connection.cursor() as cursor:
        for a in range(3):
            execute(cursor, sql, [a, 1])
            assert cursor.fetchone() == (a + 1, "100%")
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%100%%%%'")
        assert cursor.fetchone() == (1,)
    connection.close()
    with connection.cursor() as cursor:
        execute(cursor, sql, [5, 1])
        assert cursor.fetchone() == (6, "100%")


def test_named_placeholders_may_repeat():
    with connection.cursor() as cursor:
        execute(cursor, "SELECT %(a)s::int * 10 + %(b)s::int + %(a)s::int", {"b": 2, "a": 3})
        assert cursor.fetchone() == (35,)


def test_a_statement_the_server_cannot_prepare_runs_as_plain_sql_and_the_transaction_goes_on():
    effect = _effect("kept")
    with transaction.atomic(), connection.cursor() as cursor:
        execute(cursor, "SELECT %s IS NULL", [None])  # the server cannot type $1 alone
        assert cursor.fetchone() == (True,)
        cursor.execute("SELECT subject FROM testapp_effect WHERE id = %s", [effect.pk])
        assert cursor.fetchone() == ("kept",)
