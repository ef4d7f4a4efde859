"""Django admin (through Django's test client): receiving a unit by product code, the PDC table,
coded discards, thresholds in days and the stock picture with days of supply."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from inventory.din import make_din
from inventory.models import ProductDescription, StockThreshold, Unit, UnitStatus

pytestmark = pytest.mark.django_db

ADD = "/admin/inventory/unit/add/"
COLLECTED = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0, second=0)


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser(username="bank_admin", password="pw-123456"))
    return client


def form(**overrides) -> dict:
    return {
        "din": make_din("G1234", 26, 5),
        "product_code": "E0398V00",
        "component": "",
        "blood_group": "O-",
        "volume_ml": "280",
        "collected_at_0": COLLECTED.strftime("%Y-%m-%d"),
        "collected_at_1": COLLECTED.strftime("%H:%M:%S"),
        "expires_at": (COLLECTED + timedelta(days=35)).strftime("%Y-%m-%d %H:%M:%S"),
        "batch": "LOT-9",
        "irradiated_at": "",
    } | overrides


def test_the_admin_receives_a_unit_by_product_code_with_its_attributes(admin_client):
    response = admin_client.post(
        ADD, form(product_code="E0336V00", special_attributes=["CMV_NEGATIVE"], antigen_negative=["K"])
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    unit = Unit.objects.get()
    assert (unit.product_code, unit.division, unit.component) == ("E0336V00", "00", "RED_CELLS")
    assert (unit.special_attributes, unit.antigen_negative) == (["CMV_NEGATIVE", "LEUKOREDUCED"], ["K"])
    assert unit.history.get().by == "bank_admin"
    listing = admin_client.get("/admin/inventory/unit/", {"attribute": "CMV_NEGATIVE"}).content.decode()
    assert "E0336V00" in listing and "K-neg" in listing


def test_without_an_expiry_the_form_fills_in_the_products_default_to_confirm(admin_client):
    response = admin_client.post(ADD, form(expires_at=""))
    assert response.status_code == 200 and not Unit.objects.exists()
    errors = response.context["adminform"].form.errors
    assert "check it against the label" in errors["expires_at"][0]
    suggested = (COLLECTED + timedelta(days=42)).strftime("%Y-%m-%d %H:%M:%S")
    assert f'value="{suggested}"' in response.content.decode()
    assert admin_client.post(ADD, form(expires_at=suggested)).status_code == 302  # confirmed
    assert Unit.objects.get().expires_at == COLLECTED + timedelta(days=42)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"product_code": "E9999V00"}, "product_code"),
        ({"product_code": "E0398VAB"}, "product_code"),
        ({"product_code": "E0398V00", "component": "PLASMA"}, "component"),
        ({"product_code": "E0404V00"}, "irradiated_at"),
        ({"expires_at": COLLECTED.strftime("%Y-%m-%d %H:%M:%S")}, "expires_at"),
    ],
)
def test_the_admin_form_shows_the_receipt_rules_as_field_errors(admin_client, overrides, field):
    response = admin_client.post(ADD, form(**overrides))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Unit.objects.exists()


def test_a_second_unit_of_the_same_din_code_and_division_is_refused_but_a_split_is_not(admin_client):
    assert admin_client.post(ADD, form()).status_code == 302
    again = admin_client.post(ADD, form())
    assert "already recorded" in again.context["adminform"].form.errors["din"][0]
    assert admin_client.post(ADD, form(product_code="E0398VA0")).status_code == 302
    assert Unit.objects.count() == 2


def test_the_pdc_table_is_edited_in_the_admin(admin_client):
    response = admin_client.post(
        "/admin/inventory/productdescription/add/",
        {
            "pdc": "EB001",
            "component": "PLATELETS",
            "description": "Pooled platelets, irradiated",
            "attributes": ["IRRADIATED"],
            "default_shelf_life": "7 00:00:00",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    product = ProductDescription.objects.get(pdc="EB001")
    assert (product.attributes, product.default_shelf_life) == (["IRRADIATED"], timedelta(days=7))
    bad = admin_client.post(
        "/admin/inventory/productdescription/add/",
        {"pdc": "X1", "component": "PLATELETS", "description": "x", "default_shelf_life": "1 00:00:00"},
    )
    assert "pdc" in bad.context["adminform"].form.errors


def test_a_coded_discard_from_the_unit_list(admin_client, unit_factory):
    unit = unit_factory()
    action = {"action": "discard_units", "_selected_action": [str(unit.pk)], "index": "0"}
    admin_client.post("/admin/inventory/unit/", action | {"discard_reason": "OTHER", "reason": ""})
    assert Unit.objects.get(pk=unit.pk).status == UnitStatus.AVAILABLE  # OTHER needs a note
    admin_client.post("/admin/inventory/unit/", action | {"discard_reason": "FAILED_TESTING", "reason": ""})
    unit.refresh_from_db()
    assert unit.status == UnitStatus.DISCARDED and unit.history.last().detail == {"reason": "FAILED_TESTING"}


def test_irradiating_from_the_unit_list(admin_client, unit_factory):
    unit = unit_factory()
    admin_client.post(
        "/admin/inventory/unit/", {"action": "irradiate_units", "_selected_action": [str(unit.pk)], "index": "0"}
    )
    unit.refresh_from_db()
    assert unit.irradiated_at is not None and unit.expires_at == unit.irradiated_at + timedelta(days=14)


def test_thresholds_in_days_and_the_stock_picture(admin_client, unit_factory):
    from inventory import services

    services.ensure_stock_keys()
    threshold = StockThreshold.objects.get(component="RED_CELLS", blood_group="O-")
    response = admin_client.post(
        f"/admin/inventory/stockthreshold/{threshold.pk}/change/",
        {"low_threshold": "10", "critical_threshold": "4", "low_days": "3.0", "critical_days": "1.5"},
    )
    assert response.status_code == 302
    threshold.refresh_from_db()
    assert (threshold.low_days, threshold.critical_days) == (3, 1.5)
    unit_factory.create_batch(12, blood_group="O-", special_attributes=["IRRADIATED"])
    page = admin_client.get("/admin/inventory/stockoverview/").content.decode()
    assert "12 irradiated" in page and "3.0/1.5 d" in page and "\N{EN DASH} days" in page
