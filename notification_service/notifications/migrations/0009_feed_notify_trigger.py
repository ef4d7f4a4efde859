"""Wake the live feed from PostgreSQL itself: one NOTIFY per statement that writes notifications.

Delivered at commit (and once per transaction), so a stream's hub reads the feed as soon as
a notification is committed instead of at its next poll (every 0.5 s: 256 ms at the median).
SQLite has no NOTIFY; there the hub polls.
"""

from django.db import migrations

from shared_events.django.notify_trigger import notify_on_write


class Migration(migrations.Migration):
    dependencies = [("notifications", "0008_stock_count_index")]

    operations = [
        notify_on_write(table="notifications_notification", channel="notifications_feed", events="INSERT OR UPDATE")
    ]
