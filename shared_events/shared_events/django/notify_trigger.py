"""A migration operation: a trigger that wakes a ``LISTEN``er from PostgreSQL itself.

One NOTIFY per writing statement, delivered at commit (and once per transaction): no round
trip of its own, where a ``SELECT pg_notify(...)`` after each write would cost one. SQLite has
no NOTIFY; there the operation does nothing and the listener polls.

Used by the outbox (``shared_events`` 0002: the relay) and the notifications' live feed
(``notifications`` 0009: the feed's hub). Keep what it writes unchanged: applied migrations ran it.
"""

from __future__ import annotations

from django.db import migrations


def notify_on_write(*, table: str, channel: str, events: str = "INSERT") -> migrations.RunPython:
    """Create (and, reversed, drop) the trigger and function ``<channel>_notify`` on ``table``."""
    name = f"{channel}_notify"
    create = f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{channel}', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS {name} ON {table};
CREATE TRIGGER {name}
    AFTER {events} ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION {name}();
"""
    drop = f"""
DROP TRIGGER IF EXISTS {name} ON {table};
DROP FUNCTION IF EXISTS {name}();
"""
    return migrations.RunPython(_on_postgresql(create), _on_postgresql(drop))


def _on_postgresql(sql: str):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run
