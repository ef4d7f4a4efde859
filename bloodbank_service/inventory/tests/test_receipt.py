"""Receiving units by ISBT 128 product code, with special attributes, antigen typing and irradiation
(transfusion.md sections 6, 8, 9): the bank's API, on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inventory.din import make_din
from inventory.models import ProductDescription, Unit, UnitStatus
from shared_events.django.models import OutboxEvent

pytestmark = pytest.mark.django_db

URL = "/api/v1/units/"
DIN = make_din("G1234", 26, 77)
COLLECTED = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


def body(**overrides) -> dict:
    return {
        "din": DIN,
        "product_code": "E0398V00",
        "blood_group": "O-",
        "volume_ml": 280,
        "collected_at": COLLECTED.isoformat(),
        "expires_at": (COLLECTED + timedelta(days=35)).isoformat(),
        "batch": "LOT-1",
    } | overrides


def post(client, **overrides):
    return client.post(URL, body(**overrides), format="json")


def test_the_product_code_gives_the_component_and_the_division(bank_client):
    response = post(bank_client, product_code="E3087VA0", expires_at=(COLLECTED + timedelta(days=5)).isoformat())
    assert response.status_code == 201, response.json()
    unit = response.json()
    assert (unit["product_code"], unit["division"], unit["component"]) == ("E3087VA0", "A0", "PLATELETS")
    assert Unit.objects.get().division == "A0"


def test_only_a_component_gets_its_configured_default_code_and_division_00(bank_client):
    response = post(
        bank_client, product_code="", component="PLASMA", expires_at=(COLLECTED + timedelta(days=300)).isoformat()
    )
    assert response.status_code == 201, response.json()
    assert (response.json()["product_code"], response.json()["division"]) == ("E2555V00", "00")
    # The default is configured, not coded: another default product of the component gives another code.
    ProductDescription.objects.filter(pdc="E2555").update(component_default=False)
    ProductDescription.objects.filter(pdc="E2620").update(component_default=True)
    other = post(
        bank_client,
        din=make_din("G1234", 26, 78),
        product_code="",
        component="PLASMA",
        expires_at=(COLLECTED + timedelta(days=300)).isoformat(),
    )
    assert other.status_code == 201, other.json()
    assert other.json()["product_code"] == "E2620V00"
    assert other.json()["special_attributes"] == ["LEUKOREDUCED"]  # what that product implies


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"product_code": "E0398V0"}, "product_code", "8 characters"),
        ({"product_code": "E0398VAB"}, "product_code", "division"),
        ({"product_code": "e0398V00"}, "product_code", "Product Description Code"),
        ({"product_code": "E9999V00"}, "product_code", "unknown Product Description Code E9999"),
        ({"product_code": "", "component": None}, "product_code", "required"),
        ({"product_code": "E0398V00", "component": "PLASMA"}, "component", "is RED_CELLS, not PLASMA"),
        ({"special_attributes": ["GLOW_IN_THE_DARK"]}, "special_attributes", ""),
        ({"antigen_negative": ["KK"]}, "antigen_negative", ""),
        ({"antigen_negative": ["fya"]}, "antigen_negative", ""),  # Fya: case matters
        ({"antigen_negative": ["kell"]}, "antigen_negative", ""),
        (
            {
                "product_code": "E2555V00",
                "antigen_negative": ["K"],
                "expires_at": (COLLECTED + timedelta(days=300)).isoformat(),
            },
            "antigen_negative",
            "red cells",
        ),
        ({"expires_at": COLLECTED.isoformat()}, "expires_at", "after collected_at"),
        ({"expires_at": (COLLECTED - timedelta(days=1)).isoformat()}, "expires_at", "after collected_at"),
        ({"irradiated_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat()}, "irradiated_at", "future"),
        ({"irradiated_at": (COLLECTED - timedelta(hours=2)).isoformat()}, "irradiated_at", "before collected_at"),
    ],
)
def test_a_bad_receipt_is_a_400_on_its_field_and_records_nothing(bank_client, overrides, field, message):
    response = post(bank_client, **{k: v for k, v in overrides.items() if v is not None})
    assert response.status_code == 400, response.json()
    assert field in response.json(), response.json()
    assert message in str(response.json()[field])
    assert not Unit.objects.exists()
    assert not OutboxEvent.objects.exists()


def test_a_missing_label_expiry_is_a_400_that_suggests_the_products_default(bank_client):
    response = bank_client.post(URL, {k: v for k, v in body().items() if k != "expires_at"}, format="json")
    assert response.status_code == 400
    assert response.json()["expires_at"] == ["This field is required."]
    from inventory.receipt import ReceiptError, check_receipt

    with pytest.raises(ReceiptError) as refused:
        check_receipt(
            **{k: v for k, v in body().items() if k != "expires_at"} | {"collected_at": COLLECTED}, expires_at=None
        )
    assert (COLLECTED + timedelta(days=42)).isoformat() in refused.value.errors["expires_at"][0]


def test_components_of_one_donation_and_splits_of_one_unit_are_separate_units(bank_client):
    plasma_expiry = (COLLECTED + timedelta(days=300)).isoformat()
    platelet_expiry = (COLLECTED + timedelta(days=5)).isoformat()
    assert post(bank_client).status_code == 201  # red cells
    assert post(bank_client, product_code="E2555V00", expires_at=plasma_expiry).status_code == 201  # plasma
    assert post(bank_client, product_code="E3087VA0", expires_at=platelet_expiry).status_code == 201
    assert post(bank_client, product_code="E3087VB0", expires_at=platelet_expiry).status_code == 201
    units = {(u.product_code, u.division, u.component) for u in Unit.objects.filter(din=DIN)}
    assert units == {
        ("E0398V00", "00", "RED_CELLS"),
        ("E2555V00", "00", "PLASMA"),
        ("E3087VA0", "A0", "PLATELETS"),
        ("E3087VB0", "B0", "PLATELETS"),
    }
    again = post(bank_client, product_code="E3087VB0", expires_at=platelet_expiry)
    assert again.status_code == 400
    assert again.json()["din"] == [f"a unit with DIN {DIN}, product code E3087VB0 and division B0 is already recorded"]
    assert Unit.objects.count() == 4


def test_special_attributes_and_antigen_typing_are_kept_with_those_the_product_implies(bank_client):
    response = post(
        bank_client,
        product_code="E0336V00",
        special_attributes=["CMV_NEGATIVE", "HBS_NEGATIVE", "CMV_NEGATIVE"],
        antigen_negative=["K", "Fya", "c"],
    )
    assert response.status_code == 201, response.json()
    unit = response.json()
    assert unit["special_attributes"] == ["CMV_NEGATIVE", "LEUKOREDUCED", "HBS_NEGATIVE"]
    assert unit["antigen_negative"] == ["c", "K", "Fya"]
    assert bank_client.get(URL, {"special_attribute": "CMV_NEGATIVE"}).json()["count"] == 1
    assert bank_client.get(URL, {"special_attribute": "WASHED"}).json()["count"] == 0
    assert bank_client.get(URL, {"antigen_negative": "K"}).json()["count"] == 1
    assert bank_client.get(URL, {"antigen_negative": "k"}).json()["count"] == 0
    assert bank_client.get(URL, {"pdc": "E0336"}).json()["count"] == 1
    assert bank_client.get(URL, {"product_code": "E0336V00", "division": "00"}).json()["count"] == 1
    assert bank_client.get(URL, {"antigen_negative": "Kell"}).status_code == 400


class TestIrradiation:
    def test_an_irradiated_red_cell_unit_needs_its_irradiation_time(self, bank_client):
        response = post(bank_client, special_attributes=["IRRADIATED"])
        assert response.status_code == 400
        assert "required for an irradiated RED_CELLS unit" in response.json()["irradiated_at"][0]
        # The product code may say it: the irradiated red-cell PDC needs the time too.
        assert "irradiated_at" in post(bank_client, product_code="E0404V00").json()

    def test_its_expiry_is_at_most_14_days_after_irradiation(self, bank_client):
        irradiated_at = COLLECTED + timedelta(days=1)
        late = post(
            bank_client,
            product_code="E0404V00",
            irradiated_at=irradiated_at.isoformat(),
            expires_at=(irradiated_at + timedelta(days=14, minutes=1)).isoformat(),
        )
        assert late.status_code == 400 and "14 days after irradiation" in late.json()["expires_at"][0]
        ok = post(
            bank_client,
            product_code="E0404V00",
            irradiated_at=irradiated_at.isoformat(),
            expires_at=(irradiated_at + timedelta(days=14)).isoformat(),
        )
        assert ok.status_code == 201, ok.json()
        assert ok.json()["special_attributes"] == ["IRRADIATED", "LEUKOREDUCED"]

    def test_the_limit_is_a_setting(self, bank_client, settings):
        settings.IRRADIATED_RED_CELL_DAYS = 28  # 21 CFR 610.53
        irradiated_at = COLLECTED + timedelta(hours=3)
        response = post(
            bank_client,
            special_attributes=["IRRADIATED"],
            irradiated_at=irradiated_at.isoformat(),
            expires_at=(irradiated_at + timedelta(days=28)).isoformat(),
        )
        assert response.status_code == 201, response.json()

    def test_an_irradiation_time_makes_the_unit_irradiated(self, bank_client):
        irradiated_at = COLLECTED + timedelta(days=1)
        response = post(
            bank_client,
            irradiated_at=irradiated_at.isoformat(),
            expires_at=(irradiated_at + timedelta(days=10)).isoformat(),
        )
        assert response.status_code == 201 and response.json()["special_attributes"] == ["IRRADIATED"]

    def test_irradiated_platelets_keep_their_shelf_life_and_need_no_time(self, bank_client):
        response = post(
            bank_client,
            product_code="E3087V00",
            special_attributes=["IRRADIATED"],
            expires_at=(COLLECTED + timedelta(days=5)).isoformat(),
        )
        assert response.status_code == 201, response.json()

    def test_irradiating_a_unit_in_stock_shortens_its_expiry_and_is_traced(self, bank_client):
        unit_id = post(bank_client).json()["id"]
        response = bank_client.post(f"{URL}{unit_id}/irradiate/", {}, format="json")
        assert response.status_code == 200, response.json()
        unit = Unit.objects.get(pk=unit_id)
        assert unit.special_attributes == ["IRRADIATED"]
        assert unit.expires_at == unit.irradiated_at + timedelta(days=14)  # was collection + 35 days
        last = unit.history.last()
        assert (last.step, last.from_status, last.to_status) == ("IRRADIATED", "AVAILABLE", "AVAILABLE")
        trace = bank_client.get(f"/api/v1/units/{unit.din}/trace/").json()
        assert [e["step"] for e in trace["units"][0]["events"]] == ["RECEIVED_AT_BANK", "IRRADIATED"]
        assert bank_client.post(f"{URL}{unit_id}/irradiate/", {}, format="json").status_code == 409  # once

    def test_an_irradiation_after_which_the_unit_would_have_expired_is_refused(self, bank_client):
        collected = datetime.now(UTC) - timedelta(days=20)
        unit_id = post(
            bank_client, collected_at=collected.isoformat(), expires_at=(collected + timedelta(days=35)).isoformat()
        ).json()["id"]
        when = (collected + timedelta(days=1)).isoformat()
        response = bank_client.post(f"{URL}{unit_id}/irradiate/", {"irradiated_at": when}, format="json")
        assert response.status_code == 400 and "irradiated_at" in response.json()
        assert Unit.objects.get(pk=unit_id).irradiated_at is None


class TestDiscardReasons:
    def test_a_bank_discard_takes_a_code_and_other_needs_a_note(self, bank_client, unit_factory):
        unit = unit_factory()
        url = f"{URL}{unit.pk}/discard/"
        assert bank_client.post(url, {"reason": "Bag damaged"}, format="json").status_code == 400
        assert bank_client.post(url, {"reason": "damaged"}, format="json").status_code == 400  # codes are exact
        assert bank_client.post(url, {"reason": "OTHER"}, format="json").json() == {
            "note": ["required when the reason is OTHER"]
        }
        assert Unit.objects.get(pk=unit.pk).status == UnitStatus.AVAILABLE
        response = bank_client.post(url, {"reason": "OTHER", "note": "lipaemic"}, format="json")
        assert response.status_code == 200 and response.json()["status"] == "DISCARDED"
        last = Unit.objects.get(pk=unit.pk).history.last()
        assert (last.reason, last.detail) == ("OTHER: lipaemic", {"reason": "OTHER", "note": "lipaemic"})

    @pytest.mark.parametrize("code", ["EXPIRED", "FAILED_TESTING", "DAMAGED", "RECALLED", "TEMPERATURE_EXCURSION"])
    def test_every_coded_reason_is_accepted(self, bank_client, unit_factory, code):
        unit = unit_factory(status=UnitStatus.QUARANTINED)
        response = bank_client.post(f"{URL}{unit.pk}/discard/", {"reason": code}, format="json")
        assert response.status_code == 200 and response.json()["status"] == "DISCARDED"
        assert Unit.objects.get(pk=unit.pk).history.last().detail == {"reason": code}


def test_the_product_table_is_listed_with_default_shelf_lives(bank_client):
    rows = {row["pdc"]: row for row in bank_client.get("/api/v1/products/").json()}
    assert rows["E0398"] == {
        "pdc": "E0398",
        "component": "RED_CELLS",
        "description": "Red cells, additive solution",
        "attributes": [],
        "default_shelf_life_hours": 42 * 24.0,
        "component_default": True,
        "default_product_code": "E0398V00",
    }
    assert rows["E0404"]["attributes"] == ["LEUKOREDUCED", "IRRADIATED"]
    assert {row["component"] for row in rows.values() if row["component_default"]} == {
        "WHOLE_BLOOD",
        "RED_CELLS",
        "PLASMA",
        "PLATELETS",
        "CRYO",
    }


def test_a_product_added_to_the_table_can_be_received(bank_client):
    assert post(bank_client, product_code="EA123V00").status_code == 400
    ProductDescription.objects.create(
        pdc="EA123", component="RED_CELLS", description="Red cells, paediatric", default_shelf_life=timedelta(days=35)
    )
    response = post(bank_client, product_code="EA123VAa")
    assert response.status_code == 201, response.json()
    assert (response.json()["component"], response.json()["division"]) == ("RED_CELLS", "Aa")
