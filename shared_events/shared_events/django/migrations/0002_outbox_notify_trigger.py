"""Wake the relay from PostgreSQL itself: one NOTIFY per inserting statement, delivered at commit.

A trigger costs no round trip, where a ``SELECT pg_notify(...)`` after every
outbox insert cost one. SQLite has no NOTIFY; its relay polls.
"""

from django.db import migrations

from shared_events.django.notify_trigger import notify_on_write


class Migration(migrations.Migration):
    dependencies = [("shared_events", "0001_initial")]

    operations = [notify_on_write(table="shared_events_outboxevent", channel="shared_events_outbox")]
