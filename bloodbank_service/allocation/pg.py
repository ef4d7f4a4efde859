"""PostgreSQL statements for the decision hot path (fewer round trips than the ORM's).

Each function does what a few ORM queries in ``services`` would do, in one
statement; ``services`` falls back to the ORM on other databases (SQLite in
``make run`` serialises writers, so it needs no row locks).
"""

from __future__ import annotations

import json
from datetime import datetime
from uuid import UUID

from django.db import connection
from inventory.models import Unit, UnitStatusChange

from allocation.compatibility import DonorStep, Wanted
from allocation.models import Allocation, BankRequest
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


def take_units(wanted: Wanted, step: DonorStep, *, now: datetime) -> list[Unit]:
    """Allocate ``wanted.units`` FEFO units of ``step`` (its group, attributes, antigens), or none (not enough)."""
    not_before = wanted.needed_by if wanted.priority == Priority.SCHEDULED and wanted.needed_by else now
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
    units = [
        Unit(
            id=id_,
            din=din,
            component=component,
            blood_group=group,
            expires_at=expires_at,
            batch=batch,
            product_code=product_code,
            division=division,
            special_attributes=_json_list(attributes),
        )
        for id_, din, component, group, expires_at, batch, product_code, division, attributes in rows
    ]
    return sorted(units, key=lambda unit: (unit.expires_at, unit.din))


def _json_list(value: str | list | None) -> list:
    # Django keeps psycopg's jsonb loader a no-op (its JSONField decodes): a raw cursor gets the text.
    return json.loads(value) if isinstance(value, str) else list(value or [])


def request_exists_locked(request_id: UUID) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM allocation_bankrequest WHERE request_id = %s FOR UPDATE", [request_id])
        return cursor.fetchone() is not None


def _insert_parts(model, objects) -> tuple[str, list]:
    # Every concrete column but a database-generated primary key (BigAutoField).
    fields = [field for field in model._meta.concrete_fields if not getattr(field, "db_returning", False)]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(objects))
    params = [field.get_db_prep_save(field.pre_save(obj, add=True), connection) for obj in objects for field in fields]
    # Table and column names come from the models, values are parameters.
    table = connection.ops.quote_name(model._meta.db_table)
    return f"INSERT INTO {table} ({columns}) VALUES {placeholders}", params  # noqa: S608


def insert_decision(bank_request: BankRequest, allocations: list[Allocation], history: list[UnitStatusChange]) -> None:
    """Insert the decided request, its allocations and the units' history rows in one statement.

    Foreign keys are DEFERRABLE INITIALLY DEFERRED (Django's default on
    PostgreSQL), so the order inside the statement does not matter.
    """
    parts = [_insert_parts(BankRequest, [bank_request])]
    if allocations:
        parts.append(_insert_parts(Allocation, allocations))
    if history:
        parts.append(_insert_parts(UnitStatusChange, history))
    *ctes, (last_sql, last_params) = parts
    sql = ""
    params: list = []
    if ctes:
        sql = "WITH " + ", ".join(f"i{n} AS ({part_sql})" for n, (part_sql, _) in enumerate(ctes)) + " "
        for _, part_params in ctes:
            params.extend(part_params)
    with connection.cursor() as cursor:
        cursor.execute(sql + last_sql, params + last_params)
