"""The rules of receiving a unit into stock (transfusion.md sections 6, 8 and 9), in one function.

``check_receipt`` turns what a receipt says (the API's body, the admin form) into the unit to record,
or raises ``ReceiptError`` with every field's problem: the product code's structure and its PDC in the
configured table (which gives the component, the attributes the product implies and the default
shelf life), the label's expiry, special attributes, antigen typing, irradiation, and the unit's
identity (DIN, product code, division) not recorded yet. ``inventory.services.receive_unit`` records it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from inventory import rules
from inventory.din import InvalidDIN, normalize_din
from inventory.models import ProductDescription, Unit
from inventory.products import InvalidProductCode, default_code_of, parse_product_code
from shared_events.enums import ANTIGENS, Component, UnitAttribute

# Components whose irradiation shortens their shelf life (they hold red cells: BSH, EDQM, 21 CFR 610.53).
RED_CELL_COMPONENTS = frozenset({Component.RED_CELLS, Component.WHOLE_BLOOD})
# Antigen typing is of red cells: only these components carry it.
ANTIGEN_TYPED_COMPONENTS = RED_CELL_COMPONENTS


class ReceiptError(Exception):
    """A receipt that cannot be recorded: ``errors`` maps each field to its problems (HTTP 400)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {' '.join(problems)}" for name, problems in errors.items()))


@dataclass(frozen=True)
class Receipt:
    """A unit ready to be recorded: every field resolved and checked."""

    din: str
    product_code: str
    division: str
    component: str
    blood_group: str
    volume_ml: int
    collected_at: datetime
    expires_at: datetime
    batch: str
    special_attributes: list[str] = field(default_factory=list)
    antigen_negative: list[str] = field(default_factory=list)
    irradiated_at: datetime | None = None


def irradiated_shelf_life() -> timedelta:
    """How long an irradiated red-cell unit keeps after irradiation (setting ``IRRADIATED_RED_CELL_DAYS``)."""
    return timedelta(days=settings.IRRADIATED_RED_CELL_DAYS)


def default_product(component: str) -> ProductDescription | None:
    """The configured default product of a component, if any."""
    return ProductDescription.objects.filter(component=component, component_default=True).first()


def suggested_expiry(*, product_code: str = "", component: str = "", collected_at: datetime) -> datetime | None:
    """The product's default shelf life from collection: a suggestion to check against the label, never the truth."""
    product = None
    if product_code:
        try:
            product = ProductDescription.objects.filter(pdc=parse_product_code(product_code).pdc).first()
        except InvalidProductCode:
            return None
    elif component:
        product = default_product(component)
    return collected_at + product.default_shelf_life if product else None


def _ordered(values: Iterable[str], order: Iterable[str]) -> list[str]:
    wanted = set(values)
    return [value for value in order if value in wanted]


def check_receipt(
    *,
    din: str,
    blood_group: str,
    volume_ml: int,
    collected_at: datetime,
    batch: str,
    expires_at: datetime | None,
    product_code: str = "",
    component: str = "",
    special_attributes: Iterable[str] = (),
    antigen_negative: Iterable[str] = (),
    irradiated_at: datetime | None = None,
    now: datetime | None = None,
    expiry_required: bool = True,
) -> Receipt:
    """The unit a receipt describes, checked; raises ``ReceiptError`` listing every problem.

    ``product_code`` decides the component (from its PDC in the configured table), the division
    (its last 2 characters) and attributes the product implies; sent alone, ``component`` gets its
    configured default code, division 00. ``expires_at`` is the label's and required
    (``expiry_required=False``: seeds and tests, where it defaults to the product's shelf life).
    """
    now = now or timezone.now()
    errors: dict[str, list[str]] = {}

    def problem(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    try:
        din = normalize_din(din)
    except InvalidDIN as exc:
        problem("din", str(exc))

    # -- product identity ---------------------------------------------------------------------
    product: ProductDescription | None = None
    division = ""
    if product_code:
        try:
            parsed = parse_product_code(product_code)
        except InvalidProductCode as exc:
            problem("product_code", str(exc))
        else:
            product = ProductDescription.objects.filter(pdc=parsed.pdc).first()
            if product is None:
                problem("product_code", f"unknown Product Description Code {parsed.pdc}: not in the product table")
            elif component and component != product.component:
                problem("component", f"product code {product_code} is {product.component}, not {component}")
            division = parsed.division
    elif component:
        product = default_product(component)
        if product is None:
            problem("component", f"no default product is configured for {component}: send product_code")
        else:
            product_code, division = default_code_of(product.pdc), "00"
    else:
        problem("product_code", "required: the unit's ISBT 128 product code (or only its component, for its default)")

    # -- attributes -----------------------------------------------------------------------------
    attributes = set(special_attributes)
    unknown = sorted(attributes - set(UnitAttribute))
    if unknown:
        problem("special_attributes", f"unknown attributes {unknown}; one of {[a.value for a in UnitAttribute]}")
    antigens = set(antigen_negative)
    bad_antigens = sorted(antigens - set(ANTIGENS))
    if bad_antigens:
        problem("antigen_negative", f"unknown antigens {bad_antigens} (case matters); one of {list(ANTIGENS)}")
    if product is not None:
        attributes |= set(product.attributes)
    if irradiated_at is not None:
        attributes.add(UnitAttribute.IRRADIATED)  # a unit with an irradiation time is irradiated
    resolved = Component(product.component) if product is not None else None
    if antigens and resolved is not None and resolved not in ANTIGEN_TYPED_COMPONENTS:
        problem("antigen_negative", f"antigen typing is of red cells: not for {resolved}")

    # -- dates ------------------------------------------------------------------------------------
    if collected_at > now:
        problem("collected_at", "cannot be in the future")
    if expires_at is None:
        if expiry_required:
            suggestion = product and collected_at + product.default_shelf_life
            hint = f" (the product's default shelf life would give {suggestion.isoformat()})" if suggestion else ""
            problem("expires_at", f"required: the expiry printed on the label{hint}")
        elif product is not None:
            expires_at = collected_at + product.default_shelf_life
    if expires_at is not None:
        if expires_at <= collected_at:
            problem("expires_at", "must be after collected_at")
        elif resolved is not None and (
            why := rules.expiry_problem(resolved, collected_at=collected_at, expires_at=expires_at, now=now)
        ):
            problem("expires_at", why)
    if irradiated_at is not None:
        if irradiated_at < collected_at:
            problem("irradiated_at", "cannot be before collected_at")
        if irradiated_at > now:
            problem("irradiated_at", "cannot be in the future")
    if UnitAttribute.IRRADIATED in attributes and resolved in RED_CELL_COMPONENTS:
        if irradiated_at is None:
            problem("irradiated_at", f"required for an irradiated {resolved} unit: it shortens its shelf life")
        elif expires_at is not None and expires_at > irradiated_at + irradiated_shelf_life():
            latest = irradiated_at + irradiated_shelf_life()
            problem(
                "expires_at",
                f"an irradiated {resolved} unit keeps {settings.IRRADIATED_RED_CELL_DAYS} days after irradiation: "
                f"expires at {latest.isoformat()} at the latest",
            )

    # -- identity ---------------------------------------------------------------------------------
    if not errors and Unit.objects.filter(din=din, product_code=product_code, division=division).exists():
        problem(
            "din", f"a unit with DIN {din}, product code {product_code} and division {division} is already recorded"
        )
    if errors:
        raise ReceiptError(errors)
    return Receipt(
        din=din,
        product_code=product_code,
        division=division,
        component=product.component,
        blood_group=blood_group,
        volume_ml=volume_ml,
        collected_at=collected_at,
        expires_at=expires_at,
        batch=batch,
        special_attributes=_ordered(attributes, [a.value for a in UnitAttribute]),
        antigen_negative=_ordered(antigens, ANTIGENS),
        irradiated_at=irradiated_at,
    )
