"""Queries whose SQL Django builds once: the hot paths keep their ORM form without paying for it each time.

Profiles of the workers and of the request POST (``bench/results/README.md``)
showed the Django ORM spending most of a simple statement's CPU on building
its SQL (filters, joins, the compiler) before PostgreSQL sees it: about half
a millisecond a query, more than the database takes to run it. Here a query
is written once as an ORM queryset, compiled on first use (per database
connection), and then only its parameters change:

    _by_id = Prepared(
        lambda request_id: BloodRequest.objects.select_for_update().filter(id=request_id).order_by("pk")[:1],
        request_id=UUID,
    )
    blood_request = _by_id.first(request_id=some_id)

The builder is called once with a sentinel value of each named parameter's
type; the compiled statement's parameters equal to a sentinel become slots
filled on each run (a builder that transforms a value, e.g. ``__icontains``,
is refused when it is compiled). Rows are turned into model instances the way
Django's own ``ModelIterable`` does (converters, ``select_related``).

On PostgreSQL each of these statements is also prepared on the server
(``PREPARE``, once per database session; ``execute``): PostgreSQL then skips
parsing and planning it again, which was most of its own CPU for these short
statements (a lookup by key with a join: 0.18 -> 0.04 ms of the server's CPU).

``save_fields`` and ``insert`` are the two writes of the hot paths:
``Model.save(update_fields=...)`` and ``bulk_create`` with their statement
built once per model and field list. Neither sends model signals (the hot-path
models have no receivers).
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Generic, TypeVar

import psycopg2
from django.db import DatabaseError, connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models.query import get_related_populators
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=models.Model)
log = logging.getLogger(__name__)

_SLOT = object()


def _sentinel(kind: type) -> Any:
    if kind is uuid.UUID:
        return uuid.uuid4()
    if kind is str:
        return f"prepared-sentinel-{secrets.token_hex(8)}"
    if kind is int:
        return 2**40 + secrets.randbelow(2**40)
    if kind is datetime:
        return datetime(2999, 1, 1, tzinfo=UTC).replace(microsecond=secrets.randbelow(10**6))
    raise TypeError(f"a prepared query's parameter must be a UUID, str, int or datetime, not {kind.__name__}")


def _representations(value: Any, connection: Any) -> list[tuple[Any, Callable[[Any], Any]]]:
    """How a backend may have written ``value`` into a statement's parameters, with how to write a new value so."""
    forms: list[tuple[Any, Callable[[Any], Any]]] = [(value, lambda v: v)]
    if isinstance(value, uuid.UUID):
        forms.append((value.hex, lambda v: v.hex))  # databases without a uuid type
    if isinstance(value, datetime):
        adapt = connection.ops.adapt_datetimefield_value
        forms.append((adapt(value), adapt))
    return forms


@dataclass
class _Compiled:
    connection: Any
    compiler: Any
    sql: str
    params: list[Any]  # a constant, or _SLOT at the index of slots
    slots: list[tuple[str, Callable[[Any], Any]] | None]
    init_list: list[str]
    model_fields: slice
    populators: list[Any]
    converters: dict[int, Any]  # the backend's and the fields' value converters, found once (Django: every query)
    locks: bool  # SELECT ... FOR UPDATE: only inside a transaction, as Django's own check says


class Prepared(Generic[M]):
    """A read query (model instances) compiled once per database connection."""

    def __init__(self, build: Callable[..., models.QuerySet[M]], using: str = "default", **params: type) -> None:
        self._build = build
        self._using = using
        self._types = params
        self._compiled: dict[int, _Compiled] = {}
        self._lock = threading.Lock()

    def all(self, **values: Any) -> list[M]:
        compiled = self._for_connection()
        if compiled.locks and compiled.connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = [
            slot[1](values[slot[0]]) if slot is not None else constant
            for constant, slot in zip(compiled.params, compiled.slots, strict=True)
        ]
        with compiled.connection.cursor() as cursor:
            execute(cursor, compiled.sql, params)
            rows = cursor.fetchall()
        found = []
        model = compiled.compiler.klass_info["model"]
        if compiled.converters:
            rows = compiled.compiler.apply_converters(rows, compiled.converters)
        for row in rows:
            obj = model.from_db(self._using, compiled.init_list, row[compiled.model_fields])
            for populator in compiled.populators:
                populator.populate(row, obj)
            found.append(obj)
        return found

    def first(self, **values: Any) -> M | None:
        """The first row (the builder orders and slices as ``first()`` would), or None."""
        found = self.all(**values)
        return found[0] if found else None

    def _for_connection(self) -> _Compiled:
        connection = connections[self._using]
        compiled = self._compiled.get(id(connection))
        if compiled is None or compiled.connection is not connection:
            with self._lock:
                compiled = self._compiled[id(connection)] = self._compile(connection)
        return compiled

    def _compile(self, connection: Any) -> _Compiled:
        sentinels = {name: _sentinel(kind) for name, kind in self._types.items()}
        queryset = self._build(**sentinels)
        compiler = queryset.query.get_compiler(using=self._using)
        sql, raw_params = compiler.as_sql()
        if queryset._known_related_objects or queryset.query.annotations:
            raise ValueError("a prepared query takes neither annotations nor known related objects")
        forms = [
            (form, name, write)
            for name, value in sentinels.items()
            for form, write in _representations(value, connection)
        ]
        slots: list[tuple[str, Callable[[Any], Any]] | None] = []
        found = set()
        for param in raw_params:
            match = next(((name, write) for form, name, write in forms if _same(param, form)), None)
            slots.append(match)
            if match is not None:
                found.add(match[0])
        missing = set(sentinels) - found
        if missing:
            raise ValueError(f"prepared query: parameter(s) {sorted(missing)} not found as such in the statement")
        klass_info, select = compiler.klass_info, compiler.select
        fields = klass_info["select_fields"]
        columns = [column[0] for column in select[: compiler.col_count]]
        if compiler.has_composite_fields(columns):
            raise ValueError("a prepared query takes no composite fields")
        return _Compiled(
            connection=connection,
            compiler=compiler,
            sql=sql,
            params=[_SLOT if slot is not None else param for param, slot in zip(raw_params, slots, strict=True)],
            slots=slots,
            init_list=[column[0].target.attname for column in select[fields[0] : fields[-1] + 1]],
            model_fields=slice(fields[0], fields[-1] + 1),
            populators=get_related_populators(klass_info, select, self._using),
            converters=compiler.get_converters(columns),
            locks=queryset.query.select_for_update,
        )


def _same(param: Any, form: Any) -> bool:
    return type(param) is type(form) and param == form


# -- writes ------------------------------------------------------------------------------------------
def save_fields(obj: models.Model, fields: Sequence[str], using: str = "default") -> None:
    """``obj.save(update_fields=fields)`` (``auto_now`` fields included when listed), its UPDATE built once.

    Raises ``DatabaseError`` when no row was updated, as ``save`` does.
    """
    connection = connections[using]
    model = type(obj)
    sql = _update_sql(model, tuple(fields), connection.vendor)
    with connection.cursor() as cursor:
        execute(cursor, sql, _update_params(obj, fields, connection))
        _check_updated(obj, fields, cursor.rowcount)


def _update_params(obj: models.Model, fields: Sequence[str], connection: BaseDatabaseWrapper) -> list[Any]:
    model = type(obj)
    columns = [model._meta.get_field(name) for name in fields]
    params = [field.get_db_prep_save(field.pre_save(obj, False), connection) for field in columns]
    params.append(model._meta.pk.get_db_prep_value(obj.pk, connection))
    return params


def _check_updated(obj: models.Model, fields: Sequence[str], rows: int) -> None:
    if rows != 1:
        raise DatabaseError(f"{type(obj).__name__} {obj.pk}: saving {list(fields)} updated {rows} rows")


@cache
def _update_sql(model: type[models.Model], fields: tuple[str, ...], vendor: str) -> str:
    quote = connections["default"].ops.quote_name
    meta = model._meta
    assignments = ", ".join(f"{quote(meta.get_field(name).column)} = %s" for name in fields)
    # Identifiers come from the model; every value is a parameter.
    return f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608


def insert(objs: Iterable[M], using: str = "default") -> list[M]:
    """``bulk_create(objs)`` in one statement built once per model and row count.

    A database-generated primary key is set on each object from ``RETURNING``
    (PostgreSQL); elsewhere this is ``bulk_create`` itself.
    """
    objs = list(objs)
    if not objs:
        return objs
    connection = connections[using]
    model = type(objs[0])
    if connection.vendor != "postgresql":
        return model._default_manager.using(using).bulk_create(objs)
    fields = _insert_fields(model)
    params = [field.get_db_prep_save(field.pre_save(obj, True), connection) for obj in objs for field in fields]
    generated = model._meta.pk not in fields
    with connection.cursor() as cursor:
        execute(cursor, _insert_sql(model, len(objs)), params)
        if generated:
            for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
                obj.pk = pk
    for obj in objs:
        obj._state.adding = False
        obj._state.db = using
    return objs


def insert_together(*groups: Sequence[models.Model], using: str = "default") -> None:
    """``insert`` of each group (the rows of one model), all in one statement on PostgreSQL.

    Outside ``atomic`` one statement is a transaction of its own: a new request, its
    history line and its outbox event need no BEGIN and COMMIT round trips around
    them. Django's foreign keys are DEFERRABLE INITIALLY DEFERRED (checked at the
    commit), so the groups may come in any order. Generated primary keys are set on
    the objects, as ``insert`` does. Elsewhere: ``insert`` of each group, in one transaction.
    """
    groups = [list(group) for group in groups if group]
    connection = connections[using]
    if connection.vendor != "postgresql":
        with transaction.atomic(using=using):
            for group in groups:
                insert(group, using)
        return
    with connection.cursor() as cursor:
        execute(cursor, _insert_together_sql(_shapes(groups)), _insert_params(groups, connection))
        _set_generated_keys(groups, cursor.fetchall(), using)


def save_fields_and_insert(
    obj: models.Model, fields: Sequence[str], *groups: Sequence[models.Model], using: str = "default"
) -> None:
    """``save_fields(obj, fields)`` and ``insert_together(*groups)`` in one statement on PostgreSQL.

    A row that changes and the rows that record the change (a request's new status and its
    history line) go in one round trip: ``WITH u AS (UPDATE ...), i0 AS (INSERT ...) SELECT``.
    Raises ``DatabaseError`` when no row was updated, as ``save_fields`` does; the rows inserted
    with it are undone with the transaction the error leaves (use it inside the ``atomic`` block
    that locked ``obj``'s row). Elsewhere: ``save_fields``, then ``insert`` of each group.
    """
    groups = [list(group) for group in groups if group]
    connection = connections[using]
    if connection.vendor != "postgresql":
        save_fields(obj, fields, using)
        for group in groups:
            insert(group, using)
        return
    sql = _save_and_insert_sql(type(obj), tuple(fields), _shapes(groups))
    with connection.cursor() as cursor:
        execute(cursor, sql, _update_params(obj, fields, connection) + _insert_params(groups, connection))
        rows = cursor.fetchall()
    updated = sum(count for index, count in rows if index == -1)
    _check_updated(obj, fields, updated)
    _set_generated_keys(groups, [row for row in rows if row[0] != -1], using)


_Shapes = tuple[tuple[type[models.Model], int], ...]


def _shapes(groups: list[list[models.Model]]) -> _Shapes:
    return tuple((type(group[0]), len(group)) for group in groups)


def _insert_params(groups: list[list[models.Model]], connection: BaseDatabaseWrapper) -> list[Any]:
    params: list[Any] = []
    for group in groups:
        fields = _insert_fields(type(group[0]))
        params += [field.get_db_prep_save(field.pre_save(obj, True), connection) for obj in group for field in fields]
    return params


def _set_generated_keys(groups: list[list[models.Model]], rows: Iterable[tuple[int, int]], using: str) -> None:
    generated: dict[int, list[int]] = {}
    for index, pk in rows:
        generated.setdefault(index, []).append(pk)
    for index, group in enumerate(groups):
        if index in generated:  # a generated key per row; a group whose keys were given returns none
            for obj, pk in zip(group, generated[index], strict=True):
                obj.pk = pk
        for obj in group:
            obj._state.adding = False
            obj._state.db = using


@cache
def _insert_together_sql(shapes: _Shapes) -> str:
    """``WITH i0 AS (INSERT ...), i1 AS (INSERT ...) SELECT`` the generated keys (group, key), in insertion order."""
    inserts, keys = _insert_ctes(shapes)
    select = " UNION ALL ".join(keys) + " ORDER BY 1, 2" if keys else "SELECT 0, 0 WHERE false"
    return f"WITH {', '.join(inserts)} {select}"


@cache
def _save_and_insert_sql(model: type[models.Model], fields: tuple[str, ...], shapes: _Shapes) -> str:
    """``WITH u AS (UPDATE ... RETURNING 1), i0 AS (INSERT ...) SELECT`` (-1, rows updated), then the keys."""
    inserts, keys = _insert_ctes(shapes)
    update = f"u AS ({_update_sql(model, fields, 'postgresql')} RETURNING 1)"
    # Identifiers come from the model and the CTEs' own names; every value is a parameter.
    select = " UNION ALL ".join(["SELECT -1, count(*) FROM u", *keys]) + " ORDER BY 1, 2"  # noqa: S608
    return f"WITH {', '.join([update, *inserts])} {select}"


def _insert_ctes(shapes: _Shapes) -> tuple[list[str], list[str]]:
    """Each group's ``iN AS (INSERT ...)``, and the ``SELECT N, key FROM iN`` of those whose keys are generated."""
    quote = connections["default"].ops.quote_name
    inserts, keys = [], []
    for index, (model, rows) in enumerate(shapes):
        inserts.append(f"i{index} AS ({_insert_sql(model, rows)})")  # RETURNING the key when generated
        if model._meta.pk not in _insert_fields(model):  # an auto-increment integer: rising in insertion order
            keys.append(f"SELECT {index}, {quote(model._meta.pk.column)}::bigint FROM i{index}")  # noqa: S608
    return inserts, keys


@cache
def _insert_fields(model: type[models.Model]) -> list[models.Field]:
    return [field for field in model._meta.concrete_fields if not getattr(field, "db_returning", False)]


@cache
def _insert_sql(model: type[models.Model], rows: int) -> str:
    quote = connections["default"].ops.quote_name
    fields = _insert_fields(model)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    returning = "" if model._meta.pk in fields else f" RETURNING {quote(model._meta.pk.column)}"
    # Identifiers come from the model; every value is a parameter.
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES {', '.join([row] * rows)}{returning}"
    )


# -- server-side prepared statements (PostgreSQL) -----------------------------------------------------
_PLACEHOLDER = re.compile(r"%%|%s|%\((\w+)\)s")
_names = itertools.count(1)


@dataclass
class _Statement:
    name: str | None  # None: the server could not prepare it; run as plain SQL
    arguments: list[str] | None  # named placeholders, in $n order (None: positional)


def execute(cursor: CursorWrapper, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> None:
    """``cursor.execute(sql, params)``; on PostgreSQL as a statement prepared once per database session.

    ``sql`` must be a statement built once (a constant or a cached string): each
    distinct text is prepared in every session that runs it. Placeholders are
    psycopg's (``%s`` or ``%(name)s``). The ``PREPARE`` runs once, under a savepoint
    inside a transaction, and is not logged as a query; a statement the server
    cannot prepare (a parameter whose type it cannot infer) runs as plain SQL.

    After five runs PostgreSQL may keep a generic plan, chosen with the statistics of that
    moment: a lookup by ``= ANY(%s)`` on a table that starts empty (a new database) kept a
    sequential scan as the table grew. Such a statement is better run with
    ``cursor.execute`` (planned with its values each time; ``allocation.pg.existing_requests_locked``).
    """
    wrapper = cursor.db
    if wrapper.vendor != "postgresql":
        cursor.execute(sql, params)
        return
    statement = _statement(cursor, sql)
    if statement.name is None:
        cursor.execute(sql, params)
        return
    if statement.arguments is not None:
        values: Sequence[Any] = [params[name] for name in statement.arguments]  # type: ignore[index]
    else:
        values = list(params or ())
    if not values:
        cursor.execute(f"EXECUTE {statement.name}")
        return
    cursor.execute(f"EXECUTE {statement.name}({', '.join(['%s'] * len(values))})", values)


def _statement(cursor: CursorWrapper, sql: str) -> _Statement:
    """The session's prepared statement of ``sql``, prepared now if this session has not yet."""
    wrapper = cursor.db
    raw = wrapper.connection  # psycopg's connection: a new one (a reconnect) is a new session
    session = getattr(wrapper, "_prepared_statements", None)
    if session is None or session[0] is not raw:
        session = (raw, {})
        wrapper._prepared_statements = session
    statements: dict[str, _Statement] = session[1]
    statement = statements.get(sql)
    if statement is None:
        statement = statements[sql] = _prepare(cursor, sql)
    return statement


def _prepare(cursor: CursorWrapper, sql: str) -> _Statement:
    arguments: list[str] = []
    numbers: dict[str, int] = {}
    positional = itertools.count(1)

    def placeholder(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%"
        name = match.group(1)
        if name is None:
            return f"${next(positional)}"
        if name not in numbers:
            arguments.append(name)
            numbers[name] = len(arguments)
        return f"${numbers[name]}"

    text = _PLACEHOLDER.sub(placeholder, sql)
    name = f"prepared_{next(_names)}"
    raw = cursor.cursor  # psycopg's own cursor: the PREPARE is not one of the queries a test counts
    guard = not cursor.db.get_autocommit()  # in a transaction: a refused PREPARE must not abort it
    with cursor.db.wrap_database_errors:  # a lost connection is Django's OperationalError, retried as usual
        if guard:
            raw.execute("SAVEPOINT prepared_statement")
        try:
            raw.execute(f"PREPARE {name} AS {text}")
        except psycopg2.ProgrammingError as exc:  # e.g. a parameter whose type the server cannot infer
            if guard:
                raw.execute("ROLLBACK TO SAVEPOINT prepared_statement")
            log.info("statement not prepared (%s), run as plain SQL: %s", exc, sql[:200])
            return _Statement(name=None, arguments=None)
        if guard:
            raw.execute("RELEASE SAVEPOINT prepared_statement")
    return _Statement(name=name, arguments=arguments if numbers else None)
