"""The traceability API: dispatch, trace, FHIR R5 export (validated with fhir.resources), recalls."""

from __future__ import annotations

import uuid

import pytest
from fhir.resources.biologicallyderivedproduct import BiologicallyDerivedProduct
from fhir.resources.biologicallyderivedproductdispense import BiologicallyDerivedProductDispense
from fhir.resources.bundle import Bundle
from inventory.din import check_character
from inventory.models import Unit

from shared_events import topics
from shared_events.schemas import UnitFateV1
from traceability import services
from traceability.tests.support import approved_request, fate_payload, published, units_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def stock(unit_factory):
    return unit_factory.create_batch(3, blood_group="O+")


def test_dispatch_over_http(bank_client, stock):
    bank_request = approved_request(units=2)
    url = f"/api/v1/requests/{bank_request.request_id}/dispatch/"

    response = bank_client.post(url, {"courier": "bike 3"}, format="json")

    assert response.status_code == 201, response.data
    assert len(response.data["units"]) == 2
    assert bank_client.post(url, {}, format="json").status_code == 409
    assert bank_client.post(f"/api/v1/requests/{uuid.uuid4()}/dispatch/", {}, format="json").status_code == 404
    assert bank_client.post(url, {"courier": "x" * 101}, format="json").status_code == 400


def test_the_trace_and_the_overdue_filter(bank_client, stock):
    bank_request = approved_request(units=1)
    services.dispatch_request(request_id=bank_request.request_id, by="bank_clerk")
    [unit] = units_of(bank_request)

    trace = bank_client.get(f"/api/v1/units/{unit.din}{check_character(unit.din)}/trace/")

    assert trace.status_code == 200
    assert [e["step"] for e in trace.data["units"][0]["events"]][-2:] == ["ALLOCATED", "DISPATCHED"]
    assert bank_client.get("/api/v1/units/A999926999999/trace/").status_code == 404
    assert bank_client.get("/api/v1/units/NOT-A-DIN/trace/").status_code == 400
    assert bank_client.get("/api/v1/units/", {"status": "ISSUED", "fate_overdue": "true"}).data["count"] == 0
    assert bank_client.get("/api/v1/units/", {"status": "ISSUED", "fate_overdue": "false"}).data["count"] == 1


def test_the_fhir_export_parses_as_r5_resources(bank_client, stock):
    bank_request = approved_request(units=2)
    services.dispatch_request(request_id=bank_request.request_id, by="bank_clerk")
    transfused, _issued = units_of(bank_request)
    services.record_fate(
        data=UnitFateV1.model_validate(fate_payload(bank_request, transfused, "TRANSFUSED")), event_id=uuid.uuid4()
    )

    response = bank_client.get(f"/api/v1/units/{transfused.din}/fhir/")

    assert response.status_code == 200
    bundle = Bundle.model_validate(response.json())
    assert bundle.type == "collection"
    resources = [entry.resource for entry in bundle.entry]
    [product] = [r for r in resources if isinstance(r, BiologicallyDerivedProduct)]
    assert product.biologicalSourceEvent.value == transfused.din
    assert (product.productCategory.code, product.productStatus.code) == ("cells", "unavailable")
    assert product.division == "00"
    [dispense] = [r for r in resources if isinstance(r, BiologicallyDerivedProductDispense)]
    assert dispense.status == "issued"
    assert dispense.patient.identifier.value == "MRN-4411"
    assert dispense.product.reference == f"urn:uuid:{transfused.pk}"
    assert dispense.whenHandedOver is not None and dispense.quantity.value == 1

    stocked = Unit.objects.exclude(pk__in=[u.pk for u in units_of(bank_request)]).first()
    fresh = Bundle.model_validate(bank_client.get(f"/api/v1/units/{stocked.din}/fhir/").json())
    assert [type(e.resource).__name__ for e in fresh.entry] == ["BiologicallyDerivedProduct"]
    assert fresh.entry[0].resource.productStatus.code == "available"


def test_recalls_over_http(bank_client, stock):
    bad = bank_client.post(
        "/api/v1/recalls/", {"dins": ["A999926999999"], "reason": "DONOR_INFECTION", "severity": "HIGH"}, format="json"
    )
    assert bad.status_code == 400 and "A999926999999" in str(bad.data["dins"])
    assert (
        bank_client.post(
            "/api/v1/recalls/", {"dins": [stock[0].din], "reason": "OTHER", "severity": "HIGH"}, format="json"
        ).status_code
        == 400
    )  # OTHER needs a note

    created = bank_client.post(
        "/api/v1/recalls/",
        {"dins": [stock[0].din], "reason": "BACTERIAL_CONTAMINATION", "severity": "HIGH"},
        format="json",
    )

    assert created.status_code == 201, created.data
    [entry] = created.data["units"]
    assert (entry["outcome"], entry["accounted"]) == ("QUARANTINED_AT_BANK", True)
    closed = bank_client.post(f"/api/v1/recalls/{created.data['id']}/close/", format="json")
    assert closed.status_code == 200 and closed.data["status"] == "CLOSED"
    assert len(published(topics.RECALL_ISSUED)) == 1
    assert bank_client.get("/api/v1/recalls/").data["count"] == 1


def test_only_bank_staff_reach_traceability(outsider_client, stock):
    assert outsider_client.get(f"/api/v1/units/{stock[0].din}/trace/").status_code == 403
    assert outsider_client.post("/api/v1/recalls/", {}, format="json").status_code == 403
    assert outsider_client.post(f"/api/v1/requests/{uuid.uuid4()}/dispatch/", {}, format="json").status_code == 403


def test_fields_a_caller_may_not_set_are_ignored_by_dispatch_and_recall(bank_client, stock, unit_factory):
    """Mass assignment on the traceability endpoints: who, when, which units and which hospitals are the bank's."""
    bank_request = approved_request(units=1)
    [allocated] = units_of(bank_request)
    bystander = unit_factory(blood_group="O+")
    dispatched = bank_client.post(
        f"/api/v1/requests/{bank_request.request_id}/dispatch/",
        {
            "units": [{"unit_id": str(bystander.pk)}],
            "unit_ids": [str(bystander.pk)],
            "dispatched_by": "someone_else",
            "dispatched_at": "2001-01-01T00:00:00Z",
            "request_id": str(uuid.uuid4()),
            "hospital_id": str(uuid.uuid4()),
        },
        format="json",
    )
    assert dispatched.status_code == 201, dispatched.data
    assert [u["din"] for u in dispatched.data["units"]] == [allocated.din]
    assert dispatched.data["dispatched_by"] == "bank_clerk"
    assert dispatched.data["dispatched_at"] > "2020"
    assert dispatched.data["request_id"] == str(bank_request.request_id)
    bystander.refresh_from_db()
    assert bystander.status == "AVAILABLE"

    recalled = bank_client.post(
        "/api/v1/recalls/",
        {
            "dins": [stock[0].din],
            "reason": "DONOR_INFECTION",
            "severity": "HIGH",
            "status": "CLOSED",
            "issued_by": "someone_else",
            "hospitals": [{"hospital_id": str(uuid.uuid4()), "units": []}],
            "units": [],
        },
        format="json",
    )
    assert recalled.status_code == 201, recalled.data
    assert (recalled.data["status"], recalled.data["issued_by"]) == ("OPEN", "bank_clerk")
    assert [u["din"] for u in recalled.data["units"]] == [stock[0].din]
