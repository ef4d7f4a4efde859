"""The demo inventory exercises the transfusion rules, and every unit in it obeys the receipt rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from inventory.demo import demo_units
from inventory.models import Unit
from inventory.receipt import check_receipt

pytestmark = pytest.mark.django_db


def test_every_demo_unit_in_date_would_pass_receipt():
    now = datetime.now(UTC)
    checked = 0
    for demo in demo_units(now):
        if demo.expires_at <= now:
            continue
        check_receipt(
            din=demo.din,
            blood_group=demo.blood_group.value,
            volume_ml=demo.volume_ml,
            collected_at=demo.collected_at,
            batch=demo.batch,
            expires_at=demo.expires_at,
            product_code=demo.code,
            special_attributes=demo.special_attributes,
            antigen_negative=demo.antigen_negative,
            irradiated_at=demo.irradiated_at,
            now=now,
        )
        checked += 1
    assert checked > 300


def test_seed_demo_stocks_units_for_every_new_rule():
    call_command("seed_demo")
    now = datetime.now(UTC)
    usable = Unit.objects.filter(status="AVAILABLE", expires_at__gt=now)
    red = usable.filter(component="RED_CELLS")
    irradiated = red.filter(special_attributes__contains=["IRRADIATED", "CMV_NEGATIVE"])
    assert irradiated.count() >= 6
    for unit in irradiated:
        assert unit.irradiated_at is not None and unit.expires_at <= unit.irradiated_at + timedelta(days=14)
    assert (
        red.filter(antigen_negative__contains=["K"], special_attributes__contains=["IRRADIATED"])
        .filter(blood_group__in=["O-", "O+"])
        .exists()
    )  # a K-negative irradiated request of an unconfirmed group can be met
    assert red.filter(antigen_negative__contains=["K"]).exclude(special_attributes__contains=["IRRADIATED"]).exists()
    assert red.filter(blood_group="O-").count() >= 20 and red.filter(blood_group="O+").count() >= 20
    plasma = usable.filter(component="PLASMA")
    assert plasma.filter(blood_group__in=["AB+", "AB-"]).count() >= 12  # three MTP packs' worth of AB plasma
    assert plasma.filter(blood_group__in=["A+", "A-"], special_attributes__contains=["HT_NEGATIVE"]).count() >= 6
    donation = {
        din
        for din in Unit.objects.filter(component="RED_CELLS").values_list("din", flat=True)
        if Unit.objects.filter(din=din, component="PLASMA").exists()
    }
    assert donation, "red cells and plasma of one donation"
    splits = Unit.objects.filter(component="PLATELETS", division__in=["A0", "B0"])
    assert sorted(splits.values_list("division", flat=True)) == ["A0", "B0"]
    assert len({unit.din for unit in splits}) == 1
