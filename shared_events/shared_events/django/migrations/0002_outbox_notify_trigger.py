"""Wake the relay from PostgreSQL itself: one NOTIFY per inserting statement, delivered at commit.

A trigger costs no round trip, where a ``SELECT pg_notify(...)`` after every
outbox insert cost one. SQLite has no NOTIFY; its relay polls.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION shared_events_outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('shared_events_outbox', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS shared_events_outbox_notify ON shared_events_outboxevent;
CREATE TRIGGER shared_events_outbox_notify
    AFTER INSERT ON shared_events_outboxevent
    FOR EACH STATEMENT EXECUTE FUNCTION shared_events_outbox_notify();
"""

DROP = """
DROP TRIGGER IF EXISTS shared_events_outbox_notify ON shared_events_outboxevent;
DROP FUNCTION IF EXISTS shared_events_outbox_notify();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("shared_events", "0001_initial")]

    operations = [migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP))]
