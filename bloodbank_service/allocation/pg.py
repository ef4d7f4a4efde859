"""PostgreSQL statements for the decision hot path (fewer round trips than the ORM's).

Each function does what a few ORM queries in ``services`` would do, in one
statement; ``services`` falls back to the ORM on other databases (SQLite in
``make run`` serialises writers, so it needs no row locks).
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from uuid import UUID

from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field
from inventory.models import Unit

from allocation.compatibility import DonorStep, Wanted
from allocation.models import BankRequest
from shared_events.django.prepared import execute
from shared_events.enums import Priority

# Lock the request's FEFO units of one group (carrying the attributes and antigen-negative typings
# required), and allocate them only if there are enough: otherwise the rows stay locked but unchanged
# (the caller then looks at substitutes, and the ORM path re-reads these rows).
_TAKE_SQL = """
WITH picked AS (
    SELECT id FROM inventory_unit
     WHERE component = %(component)s AND blood_group = %(group)s AND status = 'AVAILABLE'
       AND recalled_at IS NULL
       AND expires_at > %(now)s AND expires_at >= %(not_before)s
       AND special_attributes @> %(attributes)s::jsonb
       AND antigen_negative @> %(antigens)s::jsonb
     ORDER BY expires_at, din
     LIMIT %(count)s
       FOR UPDATE SKIP LOCKED
), enough AS (
    SELECT count(*) = %(count)s AS ok FROM picked
)
UPDATE inventory_unit AS u
   SET status = 'ALLOCATED', updated_at = %(now)s
  FROM picked, enough
 WHERE u.id = picked.id AND enough.ok
RETURNING u.id, u.din, u.component, u.blood_group, u.expires_at, u.batch,
          u.product_code, u.division, u.special_attributes
"""


# The unit columns a decision reads: what _TAKE_SQL returns, in order, and the ORM path's .only().
UNIT_FIELDS = (
    "id",
    "din",
    "component",
    "blood_group",
    "expires_at",
    "batch",
    "product_code",
    "division",
    "special_attributes",
)


def take_units(wanted: Wanted, step: DonorStep, *, now: datetime) -> list[Unit]:
    """Allocate ``wanted.units`` FEFO units of ``step`` (its group, attributes, antigens), or none (not enough)."""
    not_before = wanted.needed_by if wanted.priority == Priority.SCHEDULED and wanted.needed_by else now
    # Not a server-side prepared statement: its generic plan (a bitmap scan of every unit of the group,
    # then a sort) could replace the ordered index scan that stops at ``count`` units.
    with connection.cursor() as cursor:
        cursor.execute(
            _TAKE_SQL,
            {
                "component": wanted.component.value,
                "group": step.group.value,
                "now": now,
                "not_before": not_before,
                "attributes": json.dumps(sorted(step.attributes)),
                "antigens": json.dumps(sorted(step.antigens)),
                "count": wanted.units,
            },
        )
        rows = cursor.fetchall()
    # As the ORM path's .only(*UNIT_FIELDS) builds them (positional, the rest deferred): cheaper than keywords.
    units = [Unit.from_db(connection.alias, UNIT_FIELDS, (*row[:-1], _json_list(row[-1]))) for row in rows]
    return sorted(units, key=lambda unit: (unit.expires_at, unit.din))


def _json_list(value: str | list | None) -> list:
    # Django keeps psycopg's jsonb loader a no-op (its JSONField decodes): a raw cursor gets the text.
    return json.loads(value) if isinstance(value, str) else list(value or [])


def request_exists_locked(request_id: UUID) -> bool:
    with connection.cursor() as cursor:
        execute(cursor, "SELECT 1 FROM allocation_bankrequest WHERE request_id = %s FOR UPDATE", [request_id])
        return cursor.fetchone() is not None


def existing_requests_locked(request_ids: list[UUID]) -> set[UUID]:
    """Which of ``request_ids`` the bank has, their rows locked (in id order, as one worker takes them).

    Planned with its values each time, not prepared: for ``= ANY($1)`` PostgreSQL's
    generic plan of a prepared statement is chosen once, after five runs, and on a
    new bank (an empty table, not yet analysed) it is a sequential scan that then
    stays while the table grows: 2.3 ms a decision after a few thousand requests
    (``make bench-micro``), where the index lookup takes 0.1.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT request_id FROM allocation_bankrequest WHERE request_id = ANY(%s::uuid[]) "
            "ORDER BY request_id FOR UPDATE",
            [sorted(request_ids)],
        )
        return {request_id for (request_id,) in cursor.fetchall()}  # UUIDs: Django registers psycopg2's


# The columns whose value, of exactly this Python type (or None), Django sends unchanged on
# PostgreSQL: read directly, they skip get_db_prep_save (a few microseconds each, 31 a decision).
_PLAIN_TYPES: dict[str, type] = {
    "CharField": str,
    "TextField": str,
    "UUIDField": UUID,
    "BooleanField": bool,
    "PositiveSmallIntegerField": int,
    "DateTimeField": datetime,
}


@cache
def _request_fields() -> tuple[Field, ...]:
    return tuple(BankRequest._meta.concrete_fields)


@cache
def _plain_type(field: Field) -> type | None:
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return None  # pre_save sets these
    return _PLAIN_TYPES.get(field.get_internal_type())


def _prepared(field: Field, obj: BankRequest, add: bool, real: BaseDatabaseWrapper) -> object:
    """``field.get_db_prep_save(field.pre_save(obj, add))``, without the call where it changes nothing."""
    plain = _plain_type(field)
    if plain is not None:
        value = getattr(obj, field.attname)
        # A TextChoices member (a str subclass) or a naive datetime takes Django's own way.
        if value is None or (type(value) is plain and (plain is not datetime or value.tzinfo is not None)):
            return value
    return field.get_db_prep_save(field.pre_save(obj, add), real)


@cache
def _request_sql(created: bool) -> str:
    """The request row's INSERT (a new request) or UPDATE of every column (``save()`` of a locked row)."""
    quote = connection.ops.quote_name
    fields = _request_fields()
    table = quote(BankRequest._meta.db_table)
    pk = BankRequest._meta.pk
    # Table and column names come from the model, values are parameters.
    if created:
        assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields if field is not pk)
        return f"UPDATE {table} SET {assignments} WHERE {quote(pk.column)} = %s"  # noqa: S608
    columns = ", ".join(quote(field.column) for field in fields)
    return f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"  # noqa: S608


def _request_params(bank_request: BankRequest, *, created: bool) -> list:
    # The real connection, not the thread-local proxy: a field's preparation asks it for its features.
    real = connections[connection.alias]
    fields = _request_fields()
    pk = BankRequest._meta.pk
    if not created:
        return [_prepared(field, bank_request, True, real) for field in fields]
    values = [_prepared(field, bank_request, False, real) for field in fields if field is not pk]
    values.append(_prepared(pk, bank_request, False, real))
    return values


# A decision's allocation and history rows, the same as ``services._allocation_rows`` builds (the
# models' defaults: not released, no step, an empty detail), for any number of units in one
# statement. WITH ORDINALITY keeps the units' order, so the generated ids follow it as bulk_create's do.
# The casts type the select list's parameters for the server-side PREPARE.
_ROWS_SQL = """
a AS (
    INSERT INTO allocation_allocation (request_id, unit_id, allocated_at, released_at, release_reason, pack)
    SELECT %s::uuid, u.unit_id, %s::timestamptz, NULL, '', %s::smallint
      FROM unnest(%s::uuid[]) WITH ORDINALITY AS u(unit_id, n)
     ORDER BY u.n
)
INSERT INTO inventory_unitstatuschange (unit_id, from_status, to_status, at, by, reason, request_id, step, detail)
SELECT u.unit_id, 'AVAILABLE', 'ALLOCATED', %s::timestamptz, %s::text, %s::text, %s::uuid, '', '{}'::jsonb
  FROM unnest(%s::uuid[]) WITH ORDINALITY AS u(unit_id, n)
 ORDER BY u.n
"""


@cache
def _decision_sql(created: bool, with_units: bool) -> str:
    if not with_units:
        return _request_sql(created)
    return f"WITH r AS ({_request_sql(created)}), {_ROWS_SQL}"


def save_decision(
    bank_request: BankRequest,
    unit_ids: list[UUID],
    *,
    created: bool,
    at: datetime,
    by: str,
    reason: str,
    pack: int | None = None,
) -> None:
    """Write the decided request (inserted, or every column updated when ``created``), its allocations of
    ``unit_ids`` and the units' AVAILABLE -> ALLOCATED history rows, in one statement built once.

    Foreign keys are DEFERRABLE INITIALLY DEFERRED (Django's default on
    PostgreSQL), so the order inside the statement does not matter.
    """
    params = _request_params(bank_request, created=created)
    if unit_ids:
        request_id = bank_request.request_id
        params += [request_id, at, pack, unit_ids, at, by, reason, request_id, unit_ids]
    with connection.cursor() as cursor:
        execute(cursor, _decision_sql(created, bool(unit_ids)), params)
