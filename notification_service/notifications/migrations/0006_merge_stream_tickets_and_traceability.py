from django.db import migrations


class Migration(migrations.Migration):
    """Joins the live-feed tickets (security) and traceability notification kinds branches."""

    dependencies = [
        ("notifications", "0005_stream_tickets_and_open_streams"),
        ("notifications", "0005_traceability_kinds"),
    ]

    operations = []
