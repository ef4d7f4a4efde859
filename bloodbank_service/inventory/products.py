"""ISBT 128 product identity: the default Product Code of each component (transfusion.md section 8).

The codes are illustrative (ICCBBA's Product Description Code database is licensed; a bank
configures its own): a unit sent with only a component gets its component's code, division 00.
"""

from __future__ import annotations

from shared_events.enums import Component

DEFAULT_PRODUCT_CODES: dict[Component, str] = {
    Component.WHOLE_BLOOD: "E0010V00",
    Component.RED_CELLS: "E0398V00",
    Component.PLASMA: "E2555V00",
    Component.PLATELETS: "E3087V00",
    Component.CRYO: "E5165V00",
}


def default_product_code(component: str) -> str:
    return DEFAULT_PRODUCT_CODES[Component(component)]
