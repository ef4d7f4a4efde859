from django.db import migrations


class Migration(migrations.Migration):
    """Joins the traceability (dispatch and receipt) and data-minimisation (indication code) branches."""

    dependencies = [
        ("blood_requests", "0002_dispatch_and_receipt"),
        ("blood_requests", "0002_indication_code_and_cancel_reason_code"),
    ]

    operations = []
