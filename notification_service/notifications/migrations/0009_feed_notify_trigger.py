"""Wake the live feed from PostgreSQL itself: one NOTIFY per statement that writes notifications.

Delivered at commit (and once per transaction), so a stream's hub reads the feed as soon as
a notification is committed instead of at its next poll (every 0.5 s: 256 ms at the median).
SQLite has no NOTIFY; there the hub polls.
"""

from django.db import migrations

CHANNEL = "notifications_feed"

CREATE = f"""
CREATE OR REPLACE FUNCTION notifications_feed_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS notifications_feed_notify ON notifications_notification;
CREATE TRIGGER notifications_feed_notify
    AFTER INSERT OR UPDATE ON notifications_notification
    FOR EACH STATEMENT EXECUTE FUNCTION notifications_feed_notify();
"""

DROP = """
DROP TRIGGER IF EXISTS notifications_feed_notify ON notifications_notification;
DROP FUNCTION IF EXISTS notifications_feed_notify();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("notifications", "0008_stock_count_index")]

    operations = [migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP))]
