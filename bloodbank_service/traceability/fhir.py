"""FHIR R5 export of a donation (transfusion.md section 11), built with the ``fhir.resources`` R5 models.

One ``BiologicallyDerivedProduct`` per unit of the DIN and one
``BiologicallyDerivedProductDispense`` per allocation of it (allocated, issued or
returned), in a ``collection`` Bundle. Building through the models means an
invalid resource fails here, not at a reader.
"""

from __future__ import annotations

import uuid
from typing import Any

from allocation.models import Allocation
from fhir.resources.biologicallyderivedproduct import BiologicallyDerivedProduct
from fhir.resources.biologicallyderivedproductdispense import BiologicallyDerivedProductDispense
from fhir.resources.bundle import Bundle
from inventory.models import Unit, UnitStatus
from inventory.products import parse_product_code

from shared_events.enums import Component, Fate
from traceability.models import Dispatch, UnitFate

PRODUCT_CATEGORY = "http://hl7.org/fhir/product-category"
PRODUCT_STATUS = "http://hl7.org/fhir/biologicallyderived-product-status"
ISBT128_CODES = "http://terminology.hl7.org/CodeSystem/ib"  # HL7's code system for ISBT 128
DIN_SYSTEM = "https://www.isbt128.org/uri/DonationIdentificationNumber"
FLUID = frozenset({Component.PLASMA, Component.CRYO, Component.WHOLE_BLOOD})


def product_resource(unit: Unit) -> BiologicallyDerivedProduct:
    """The unit as a product: its own product code's PDC (first 5 characters) and division, never a
    component's default (every unit has its code: received with it, or migrated from its component)."""
    code: dict[str, Any] = {
        "coding": [{"system": ISBT128_CODES, "code": parse_product_code(unit.product_code).pdc}],
        "text": unit.component,
    }
    return BiologicallyDerivedProduct.model_validate(
        {
            "resourceType": "BiologicallyDerivedProduct",
            "id": str(unit.pk),
            "productCategory": {
                "system": PRODUCT_CATEGORY,
                "code": "fluid" if Component(unit.component) in FLUID else "cells",
            },
            "productCode": code,
            "biologicalSourceEvent": {"system": DIN_SYSTEM, "value": unit.din},
            "division": unit.division,
            "productStatus": {
                "system": PRODUCT_STATUS,
                "code": "available" if unit.status == UnitStatus.AVAILABLE else "unavailable",
            },
            "expirationDate": unit.expires_at.isoformat(),
            "collection": {"collectedDateTime": unit.collected_at.isoformat()},
        }
    )


def dispense_id(allocation: Allocation) -> uuid.UUID:
    """A stable id for the dispense of one allocation (the same in every export)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"bloodbank:allocation:{allocation.pk}")


def dispense_resource(
    allocation: Allocation, *, dispatch: Dispatch | None, fate: UnitFate | None
) -> BiologicallyDerivedProductDispense:
    returned = fate is not None and fate.fate == Fate.RETURNED
    status = "returned" if returned else "issued" if dispatch is not None else "allocated"
    transfused = fate is not None and fate.fate == Fate.TRANSFUSED
    resource: dict[str, Any] = {
        "resourceType": "BiologicallyDerivedProductDispense",
        "id": str(dispense_id(allocation)),
        "status": status,
        "product": {"reference": f"urn:uuid:{allocation.unit_id}"},
        "patient": {"identifier": {"value": fate.patient_reference}} if transfused else {"display": "not recorded"},
        "matchStatus": {"text": "uncrossmatched" if getattr(allocation, "uncrossmatched", False) else "compatible"},
        "quantity": {"value": 1},
        "preparedDate": allocation.allocated_at.isoformat(),
    }
    if dispatch is not None:
        resource["whenHandedOver"] = dispatch.dispatched_at.isoformat()
    return BiologicallyDerivedProductDispense.model_validate(resource)


def donation_bundle(*, din: str) -> Bundle:
    """The Bundle for every unit of ``din``; raises ``Unit.DoesNotExist`` when there is none."""
    units = list(Unit.objects.filter(din=din).order_by("component", "pk"))
    if not units:
        raise Unit.DoesNotExist(din)
    entries: list[dict[str, Any]] = [
        {"fullUrl": f"urn:uuid:{unit.pk}", "resource": product_resource(unit)} for unit in units
    ]
    allocations = Allocation.objects.filter(unit__in=units).order_by("allocated_at", "id")
    dispatches = {
        (row.dispatch.request_id, row.unit_id): row.dispatch
        for row in Dispatch.units.through.objects.filter(unit__in=units).select_related("dispatch")
    }
    fates = {(fate.request_id, fate.unit_id): fate for fate in UnitFate.objects.filter(unit__in=units)}
    for allocation in allocations:
        key = (allocation.request_id, allocation.unit_id)
        if allocation.released_at is not None and key not in dispatches:
            continue  # released before it left the bank: never dispensed
        dispense = dispense_resource(allocation, dispatch=dispatches.get(key), fate=fates.get(key))
        entries.append({"fullUrl": f"urn:uuid:{dispense.id}", "resource": dispense})
    return Bundle.model_validate({"resourceType": "Bundle", "type": "collection", "entry": entries})


def donation_bundle_json(*, din: str) -> dict[str, Any]:
    return donation_bundle(din=din).model_dump(mode="json", by_alias=True, exclude_none=True)
