"""ISBT 128 product identity (transfusion.md section 8): product code structure and the seed PDC table.

A Product Code is 8 characters: the Product Description Code (PDC: ``E`` + 4 alphanumerics for blood
components), one character for the type of donation, and the division (``00`` undivided; first level
``A``-``Z`` + ``0``; second level ``A``-``Z`` + ``a``-``z``). The PDC decides the component, the
attributes the product implies and its default shelf life; that table is configured
(``inventory.models.ProductDescription``, editable in Django admin). ``SEED_PRODUCTS`` only seeds it
(data migration 0004): the codes are illustrative, since ICCBBA's Product Description Code database is
licensed and a bank configures its own.

Pure: no Django import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from shared_events.enums import Component, UnitAttribute

PRODUCT_CODE_LENGTH = 8
UNDIVIDED = "00"
# Volunteer allogeneic: the type of donation of a code made from a component's default PDC.
DEFAULT_DONATION_TYPE = "V"

_PDC = r"E[0-9A-Z]{4}"
# The type of donation: one character, ``V`` volunteer allogeneic, ``0`` not specified, ``A``
# autologous, ``D`` designated, ... (ISBT 128 uses digits and letters of both cases).
_DONATION_TYPE = r"[0-9A-Za-z]"
_DIVISION = r"00|[A-Z]0|[A-Z][a-z]"
_PRODUCT_CODE = re.compile(rf"(?P<pdc>{_PDC})(?P<donation>{_DONATION_TYPE})(?P<division>{_DIVISION})")
PDC_PATTERN = re.compile(_PDC)


class InvalidProductCode(ValueError):
    """Not an ISBT 128 blood component product code by its structure."""


@dataclass(frozen=True)
class ProductCode:
    pdc: str
    donation_type: str
    division: str

    @property
    def code(self) -> str:
        return f"{self.pdc}{self.donation_type}{self.division}"


def parse_product_code(value: str) -> ProductCode:
    """Split a product code into PDC, type of donation and division; raise ``InvalidProductCode``.

    Case matters: the second level of a division is lower case (``Ab``), everything else upper case.
    """
    if not isinstance(value, str) or len(value) != PRODUCT_CODE_LENGTH:
        raise InvalidProductCode(f"a product code has {PRODUCT_CODE_LENGTH} characters, e.g. E0398V00")
    match = _PRODUCT_CODE.fullmatch(value)
    if match is None:
        if not PDC_PATTERN.fullmatch(value[:5]):
            raise InvalidProductCode("the Product Description Code (first 5 characters) is E and 4 of 0-9, A-Z")
        if not re.fullmatch(_DONATION_TYPE, value[5]):
            raise InvalidProductCode("the type of donation (6th character) is a letter or a digit")
        raise InvalidProductCode("the division (last 2 characters) is 00, A0-Z0, or a capital and a small letter")
    return ProductCode(match["pdc"], match["donation"], match["division"])


def default_code_of(pdc: str) -> str:
    """The product code of an undivided volunteer donation of ``pdc``."""
    return f"{pdc}{DEFAULT_DONATION_TYPE}{UNDIVIDED}"


@dataclass(frozen=True)
class SeedProduct:
    pdc: str
    component: Component
    description: str
    attributes: tuple[UnitAttribute, ...]
    shelf_life: timedelta
    component_default: bool = False


SEED_PRODUCTS: tuple[SeedProduct, ...] = (
    SeedProduct("E0010", Component.WHOLE_BLOOD, "Whole blood, CPD", (), timedelta(days=35), True),
    SeedProduct("E0398", Component.RED_CELLS, "Red cells, additive solution", (), timedelta(days=42), True),
    SeedProduct(
        "E0336",
        Component.RED_CELLS,
        "Red cells, SAGM, leukocytes reduced",
        (UnitAttribute.LEUKOREDUCED,),
        timedelta(days=35),
    ),
    SeedProduct(
        "E0404",
        Component.RED_CELLS,
        "Red cells, SAGM, leukocytes reduced, irradiated",
        (UnitAttribute.LEUKOREDUCED, UnitAttribute.IRRADIATED),
        timedelta(days=14),
    ),
    SeedProduct(
        "E0451",
        Component.RED_CELLS,
        "Red cells, washed, leukocytes reduced",
        (UnitAttribute.LEUKOREDUCED, UnitAttribute.WASHED),
        timedelta(days=1),
    ),
    SeedProduct("E2555", Component.PLASMA, "Fresh frozen plasma", (), timedelta(days=365), True),
    SeedProduct(
        "E2620",
        Component.PLASMA,
        "Fresh frozen plasma, leukocytes reduced",
        (UnitAttribute.LEUKOREDUCED,),
        timedelta(days=3 * 365),
    ),
    SeedProduct("E3087", Component.PLATELETS, "Apheresis platelets", (), timedelta(days=5), True),
    SeedProduct(
        "E3130",
        Component.PLATELETS,
        "Apheresis platelets, leukocytes reduced, pathogen reduced",
        (UnitAttribute.LEUKOREDUCED,),
        timedelta(days=7),
    ),
    SeedProduct("E5165", Component.CRYO, "Cryoprecipitate", (), timedelta(days=365), True),
)

# The seed's component defaults as product codes. At receipt the configured table decides
# (``inventory.selectors.default_product``); these serve the seed and test data.
DEFAULT_PRODUCT_CODES: dict[Component, str] = {
    product.component: default_code_of(product.pdc) for product in SEED_PRODUCTS if product.component_default
}


def default_product_code(component: str) -> str:
    return DEFAULT_PRODUCT_CODES[Component(component)]
