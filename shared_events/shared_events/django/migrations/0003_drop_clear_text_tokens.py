"""Drop the table of DRF's original tokens (``rest_framework.authtoken``): it held every key in clear text
and the keys never expired. django-rest-knox's tokens (digests, with an expiry) replace them; everyone
logs in again once."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shared_events", "0002_outbox_notify_trigger")]

    operations = [migrations.RunSQL("DROP TABLE IF EXISTS authtoken_token", reverse_sql=migrations.RunSQL.noop)]
