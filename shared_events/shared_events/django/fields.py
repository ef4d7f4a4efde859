"""Model fields the services share."""

from __future__ import annotations

from django.db import models
from django.db.models.fields.json import DataContains

_SQLITE_LIST_CONTAINS = (
    "NOT EXISTS (SELECT 1 FROM json_each({wanted}) AS wanted"
    " WHERE wanted.value NOT IN (SELECT held.value FROM json_each({held}) AS held))"
)


class ListContains(DataContains):
    """``field__contains=[a, b]``: the JSON list holds every one of the values.

    jsonb's ``@>`` on PostgreSQL (as Django's own lookup); on SQLite, where Django has no
    ``contains`` for JSON, the same test with ``json_each`` (``make run`` may use SQLite).
    """

    def as_sqlite(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        sql = _SQLITE_LIST_CONTAINS.format(wanted=rhs, held=lhs)  # a column and a placeholder; values are params
        return sql, (*rhs_params, *lhs_params)


class JSONList(models.JSONField):
    """A JSON list of short codes (a unit's special attributes, antigens): portable, queried with ``__contains``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("default", list)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)


JSONList.register_lookup(ListContains)
