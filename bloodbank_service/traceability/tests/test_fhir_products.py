"""The FHIR export names each unit's own product: its product code's PDC and its division."""

from __future__ import annotations

import pytest
from fhir.resources.bundle import Bundle
from inventory.din import make_din

pytestmark = pytest.mark.django_db


def test_each_unit_of_a_donation_is_exported_with_its_own_pdc_and_division(bank_client, unit_factory):
    din = make_din("T0009", 26, 1)
    unit_factory(din=din, component="RED_CELLS", product_code="E0336V00")  # not the component's default
    unit_factory(din=din, component="PLATELETS", product_code="E3087VA0", division="A0")
    unit_factory(din=din, component="PLATELETS", product_code="E3087VB0", division="B0")

    bundle = Bundle.model_validate(bank_client.get(f"/api/v1/units/{din}/fhir/").json())

    products = sorted(
        (entry.resource.productCode.coding[0].code, entry.resource.division, entry.resource.productCategory.code)
        for entry in bundle.entry
    )
    assert products == [("E0336", "00", "cells"), ("E3087", "A0", "cells"), ("E3087", "B0", "cells")]
    assert {entry.resource.productCode.coding[0].system for entry in bundle.entry} == {
        "http://terminology.hl7.org/CodeSystem/ib"
    }
