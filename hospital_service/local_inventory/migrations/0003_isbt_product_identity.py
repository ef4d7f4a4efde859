"""ISBT 128 product identity on local units (transfusion.md section 8).

Units received before this migration keep their data and get their component's default product
code (the bank's ``inventory/products.py`` defaults, which its own migration gave the same units),
division 00, and no special attributes (none were sent then).
"""

import shared_events.django.fields
from django.db import migrations, models


DEFAULT_PRODUCT_CODES = {
    "WHOLE_BLOOD": "E0010V00",
    "RED_CELLS": "E0398V00",
    "PLASMA": "E2555V00",
    "PLATELETS": "E3087V00",
    "CRYO": "E5165V00",
}


def default_codes(apps, schema_editor):
    unit = apps.get_model("local_inventory", "LocalUnit")
    for component, code in DEFAULT_PRODUCT_CODES.items():
        unit.objects.filter(component=component, product_code="").update(product_code=code)


class Migration(migrations.Migration):

    dependencies = [
        ('local_inventory', '0002_fates'),
    ]

    operations = [
        migrations.AddField(
            model_name='localunit',
            name='division',
            field=models.CharField(default='00', max_length=2),
        ),
        migrations.AddField(
            model_name='localunit',
            name='product_code',
            field=models.CharField(blank=True, default='', help_text='e.g. E0398V00', max_length=8),
        ),
        migrations.AddField(
            model_name='localunit',
            name='special_attributes',
            field=shared_events.django.fields.JSONList(blank=True, default=list),
        ),
        migrations.RunPython(default_codes, migrations.RunPython.noop),
    ]
