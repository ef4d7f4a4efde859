"""A PostgreSQL session of its own, beside Django's connections, for what must hold a session.

The outbox relay keeps its advisory lock and ``LISTEN`` on one; the notification live feed's hub
``LISTEN``s on one. Django's own connections come and go (``CONN_MAX_AGE``, a request's end), and a
session-level lock or ``LISTEN`` would go with them.
"""

from __future__ import annotations

from typing import Any

from django.db import connection


def dedicated_connection() -> Any:
    """A new psycopg2 connection to the default database (Django's settings), in autocommit."""
    import psycopg2

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    dedicated = psycopg2.connect(**params)
    dedicated.autocommit = True
    return dedicated
