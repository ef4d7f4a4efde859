"""Unsent outbox rows written before structured mode get the headers of structured mode.

Until the CloudEvents Kafka binding was done right, an event's row carried ``ce_id``,
``ce_type`` and ``ce_correlationid`` headers beside the structured value; a reader of
the binding takes such a message for binary mode and rejects it (no ``ce_source``, no
``ce_specversion``). Rows still waiting for the relay when a service is upgraded (the
broker was down, say) would go out that way: they get the one header every event now
has, ``content-type: application/cloudevents+json; charset=UTF-8`` (``shared_events.wire``).
Their value is already the whole event. Sent rows are history and dead letters keep
their ``dlq_*`` headers: neither is touched.
"""

from django.db import migrations

STRUCTURED_HEADERS = {"content-type": "application/cloudevents+json; charset=UTF-8"}


def structured_mode_headers(apps, schema_editor):
    outbox = apps.get_model("shared_events", "OutboxEvent")
    unsent_events = outbox.objects.filter(sent_at__isnull=True).exclude(event_type__startswith="dlq.")
    for row in unsent_events.only("id", "headers").iterator():
        if any(name.lower().startswith("ce_") for name in row.headers):
            outbox.objects.filter(id=row.id).update(headers=STRUCTURED_HEADERS)


class Migration(migrations.Migration):
    dependencies = [("shared_events", "0003_drop_clear_text_tokens")]

    operations = [migrations.RunPython(structured_mode_headers, reverse_code=migrations.RunPython.noop)]
