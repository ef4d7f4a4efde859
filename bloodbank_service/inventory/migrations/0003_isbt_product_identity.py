"""ISBT 128 product identity and special attributes (transfusion.md sections 6 and 8).

Existing units keep their data and get their component's default product code, division 00.
"""

from django.db import migrations, models

import shared_events.django.fields

# The component defaults of inventory/products.py as they were when this migration was written.
_DEFAULT_CODES = {
    "WHOLE_BLOOD": "E0010V00",
    "RED_CELLS": "E0398V00",
    "PLASMA": "E2555V00",
    "PLATELETS": "E3087V00",
    "CRYO": "E5165V00",
}


def _default_codes(apps, schema_editor):
    unit = apps.get_model("inventory", "Unit")
    for component, code in _DEFAULT_CODES.items():
        unit.objects.filter(component=component, product_code="").update(product_code=code, division="00")


class Migration(migrations.Migration):
    dependencies = [("inventory", "0002_traceability_steps_and_recalls")]

    operations = [
        migrations.AddField(
            model_name="unit",
            name="product_code",
            field=models.CharField(
                default="",
                help_text="ISBT 128 Product Code, e.g. E0398V00 (PDC, type of donation, division)",
                max_length=8,
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="unit",
            name="division",
            field=models.CharField(default="00", help_text="00 undivided; A0, Ab ... for splits", max_length=2),
        ),
        migrations.AddField(
            model_name="unit",
            name="special_attributes",
            field=shared_events.django.fields.JSONList(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="unit",
            name="antigen_negative",
            field=shared_events.django.fields.JSONList(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="unit",
            name="irradiated_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(_default_codes, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="unit", name="unit_unique_din_component"),
        migrations.AddConstraint(
            model_name="unit",
            constraint=models.UniqueConstraint(
                fields=("din", "product_code", "division"), name="unit_unique_isbt_product"
            ),
        ),
    ]
