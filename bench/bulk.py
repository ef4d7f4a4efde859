"""Fast seeding for the benches: rows written with one PostgreSQL ``COPY`` per table.

``bulk_create`` spends most of a 100,000-row seed in Python (a model instance per
row, every field's ``pre_save`` and ``get_db_prep_save``, multi-row INSERTs);
``copy_rows`` takes plain dicts and sends them with ``COPY ... FROM STDIN``,
several times faster. A field a row does not name gets what ``bulk_create`` would
give it: ``now`` for ``auto_now``/``auto_now_add``, else what a new instance gets
(``Field.get_default()``: the default, "" or NULL). Signals are not sent (as with ``bulk_create``). Imported by the
seed scripts, which run in a service's folder after ``django.setup()``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import connection, models
from django.utils import timezone


def copy_rows(model: type[models.Model], rows: Iterable[Mapping[str, Any]], *, now: datetime | None = None) -> int:
    """Insert ``rows`` (field attnames -> values, e.g. ``unit_id`` for a foreign key) with one COPY."""
    now = now or timezone.now()
    fields = [
        field
        for field in model._meta.concrete_fields
        if not (field.primary_key and isinstance(field, models.AutoField | models.BigAutoField | models.SmallAutoField))
    ]
    is_json = [isinstance(field, models.JSONField) for field in fields]
    buffer = io.StringIO()
    count = 0
    for row in rows:
        values = []
        for field, as_json in zip(fields, is_json, strict=True):
            if field.attname in row:
                value = row[field.attname]
            elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                value = now
            else:
                value = field.get_default()  # what a new instance gets: the default, "" or None
            values.append(_text(json.dumps(value, cls=field.encoder) if as_json and value is not None else value))
        buffer.write("\t".join(values))
        buffer.write("\n")
        count += 1
    buffer.seek(0)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    with connection.cursor() as cursor:
        cursor.copy_expert(f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN", buffer)
    return count


def _text(value: object) -> str:
    """One value in COPY's text format."""
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float | Decimal | UUID):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"{value.total_seconds()} seconds"
    if not isinstance(value, str):
        raise TypeError(f"copy_rows cannot write {type(value).__name__} values: {value!r}")
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
