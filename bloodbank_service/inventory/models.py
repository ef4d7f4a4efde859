"""Blood units, their status history, and the per component/group stock keys."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q

from shared_events.django.fields import JSONList
from shared_events.enums import ANTIGENS, BloodGroup, Component, StockLevel, UnitAttribute, choices

COMPONENT_CHOICES = choices(Component)
GROUP_CHOICES = choices(BloodGroup)
LEVEL_CHOICES = [(level.value, level.value) for level in StockLevel]
ATTRIBUTE_CHOICES = choices(UnitAttribute)
ANTIGEN_CHOICES = [(antigen, antigen) for antigen in ANTIGENS]


class ProductDescription(models.Model):
    """One ISBT 128 Product Description Code the bank handles: its component, what it implies, its shelf life.

    The configured table of transfusion.md section 8 (seeded from ``inventory.products.SEED_PRODUCTS``):
    a unit's ``component`` comes from its product code's PDC, never from code.
    """

    pdc = models.CharField(
        "PDC",
        max_length=5,
        unique=True,
        validators=[RegexValidator(r"^E[0-9A-Z]{4}$", "E and 4 characters 0-9 or A-Z, e.g. E0398")],
        help_text="Product Description Code: the first 5 characters of the product code",
    )
    component = models.CharField(max_length=20, choices=COMPONENT_CHOICES)
    description = models.CharField(max_length=200)
    attributes = JSONList(
        help_text="special attributes every unit of this product has (e.g. IRRADIATED, LEUKOREDUCED)",
    )
    default_shelf_life = models.DurationField(
        help_text="from collection; only pre-fills a unit's expiry: the label's expiry is the truth"
    )
    component_default = models.BooleanField(
        default=False, help_text="the code a unit received with only its component gets (one per component)"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["component", "pdc"]
        verbose_name = "product (PDC)"
        verbose_name_plural = "products (PDC table)"
        constraints = [
            models.UniqueConstraint(
                fields=["component"], condition=Q(component_default=True), name="product_one_default_per_component"
            ),
            models.CheckConstraint(
                condition=Q(default_shelf_life__gt=timedelta(0)), name="product_shelf_life_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pdc} {self.description}"


class UnitStatus(models.TextChoices):
    AVAILABLE = "AVAILABLE"
    ALLOCATED = "ALLOCATED"
    ISSUED = "ISSUED"
    QUARANTINED = "QUARANTINED"
    EXPIRED = "EXPIRED"
    DISCARDED = "DISCARDED"
    # Final fates recorded by the hospital the unit was issued to (transfusion.md section 1).
    TRANSFUSED = "TRANSFUSED"
    WASTED = "WASTED"


class Unit(models.Model):
    """One bag of one component: the countable item of stock."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    din = models.CharField("DIN", max_length=13, help_text="ISBT 128 Donation Identification Number (13 characters)")
    component = models.CharField(max_length=20, choices=COMPONENT_CHOICES)
    blood_group = models.CharField(max_length=3, choices=GROUP_CHOICES)
    volume_ml = models.PositiveIntegerField()
    collected_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    batch = models.CharField(max_length=40)
    status = models.CharField(max_length=12, choices=UnitStatus.choices, default=UnitStatus.AVAILABLE)
    received_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Set by a recall: such a unit is never allocated or released to stock again.
    recalled_at = models.DateTimeField(null=True, blank=True)
    # ISBT 128 product identity (transfusion.md section 8): a unit is (DIN, product code, division).
    product_code = models.CharField(
        max_length=8, help_text="ISBT 128 Product Code, e.g. E0398V00 (PDC, type of donation, division)"
    )
    division = models.CharField(max_length=2, default="00", help_text="00 undivided; A0, Ab ... for splits")
    # Special attributes (shared_events.enums.UnitAttribute) and red-cell antigens the unit is typed
    # negative for (shared_events.enums.ANTIGENS), set at receipt (transfusion.md section 6). JSON lists,
    # not PostgreSQL arrays: `make run` may use SQLite; on PostgreSQL `__contains=[...]` is jsonb's @>.
    special_attributes = JSONList()
    antigen_negative = JSONList()
    irradiated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["expires_at", "din"]
        constraints = [
            models.UniqueConstraint(fields=["din", "product_code", "division"], name="unit_unique_isbt_product"),
            models.CheckConstraint(condition=Q(expires_at__gt=F("collected_at")), name="unit_expires_after_collection"),
            models.CheckConstraint(condition=Q(volume_ml__gt=0), name="unit_volume_positive"),
        ]
        indexes = [
            # The allocation query: AVAILABLE units of one component and group, FEFO.
            models.Index(
                fields=["component", "blood_group", "expires_at", "din"],
                condition=Q(status="AVAILABLE"),
                name="unit_available_fefo_idx",
            ),
            models.Index(fields=["status", "expires_at"], name="unit_status_expiry_idx"),
            models.Index(fields=["batch"], name="unit_batch_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.din} {self.component} {self.blood_group} ({self.status})"

    @property
    def stock_key(self) -> tuple[str, str]:
        return (self.component, self.blood_group)


class UnitStatusChange(models.Model):
    """One status change of a unit: who, when, why. Never edited or deleted."""

    id = models.BigAutoField(primary_key=True)
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="history")
    from_status = models.CharField(max_length=12, choices=UnitStatus.choices, blank=True)
    to_status = models.CharField(max_length=12, choices=UnitStatus.choices)
    at = models.DateTimeField()
    by = models.CharField(max_length=150, help_text="username, or 'system:<process>'")
    reason = models.TextField(blank=True)
    request_id = models.UUIDField(null=True, blank=True)
    # The traceability step this row records (transfusion.md "Trace"); blank on rows written before
    # steps were recorded: the trace derives those from the statuses. A step may leave the status
    # as it was (e.g. RECEIVED_BY_HOSPITAL, RECALLED of an issued unit).
    step = models.CharField(max_length=24, blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = "status change"
        indexes = [
            # Days of supply: the dispatches (moves to ISSUED) of the last 28 days, per stock key.
            models.Index(
                fields=["at"],
                include=["unit"],
                condition=Q(to_status="ISSUED") & ~Q(from_status="ISSUED"),
                name="history_dispatch_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.unit_id}: {self.from_status or '-'} -> {self.to_status} by {self.by}"


class StockThreshold(models.Model):
    """Par levels of one component and blood group, kept by bank admins."""

    component = models.CharField(max_length=20, choices=COMPONENT_CHOICES)
    blood_group = models.CharField(max_length=3, choices=GROUP_CHOICES)
    low_threshold = models.PositiveIntegerField()
    critical_threshold = models.PositiveIntegerField()
    # In days of supply (transfusion.md section 9); blank: no level by days. The level is the
    # worse of the level by units and the level by days.
    low_days = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    critical_days = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["component", "blood_group"]
        constraints = [
            models.UniqueConstraint(fields=["component", "blood_group"], name="threshold_unique_key"),
            models.CheckConstraint(
                condition=Q(critical_threshold__lte=F("low_threshold")), name="threshold_critical_not_above_low"
            ),
            models.CheckConstraint(
                condition=Q(low_days__isnull=True)
                | Q(critical_days__isnull=True)
                | Q(critical_days__lte=F("low_days")),
                name="threshold_critical_days_not_above_low",
            ),
            models.CheckConstraint(
                condition=(Q(low_days__isnull=True) | Q(low_days__gte=0))
                & (Q(critical_days__isnull=True) | Q(critical_days__gte=0)),
                name="threshold_days_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.component} {self.blood_group}: low {self.low_threshold}, critical {self.critical_threshold}"


class StockSnapshot(models.Model):
    """What was last published for one stock key; locked while a change publishes its stock events.

    Holding this row's lock while adjusting the count serialises the stock
    events of one key in commit order, so ``inventory.updated`` counts and
    ``low_stock`` crossings are exact even when several workers allocate at once.
    """

    threshold = models.OneToOneField(
        StockThreshold, on_delete=models.PROTECT, primary_key=True, related_name="snapshot"
    )
    component = models.CharField(max_length=20, choices=COMPONENT_CHOICES)
    blood_group = models.CharField(max_length=3, choices=GROUP_CHOICES)
    # Maintained count of units in status AVAILABLE (expired or not): every status change
    # adjusts it under this row's lock, so a decision never counts the whole stock.
    # NULL: not counted yet (the next refresh counts).
    status_available = models.IntegerField(null=True, blank=True)
    # Units of the key dispatched (moved to ISSUED) in the DISPATCH_WINDOW before the last count:
    # the demand of days of supply. Counted on every full refresh (the expiry sweep's, each
    # minute); the decision path reads it. NULL: not counted yet.
    dispatched_recently = models.IntegerField(null=True, blank=True)
    days_of_supply = models.DecimalField(
        max_digits=12, decimal_places=1, null=True, blank=True, help_text="as last published; null: none dispatched"
    )
    available_units = models.PositiveIntegerField(default=0, help_text="as last published")
    expiring_within_72h = models.PositiveIntegerField(default=0)
    level = models.CharField(max_length=10, choices=LEVEL_CHOICES, blank=True, help_text="blank: never published")
    as_of = models.DateTimeField(null=True, blank=True)
    # Set by a decision whose change was not published (the key had just been): the stock flush
    # (inventory.services.publish_coalesced_stock) publishes the key and clears it.
    unpublished_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["component", "blood_group"], name="snapshot_unique_key")]

    def __str__(self) -> str:
        return f"{self.component}:{self.blood_group} = {self.available_units} ({self.level or 'unpublished'})"


class StockOverview(StockThreshold):
    """Admin-only proxy: the stock picture per component and group on one page."""

    class Meta:
        proxy = True
        verbose_name = "stock picture"
        verbose_name_plural = "stock picture"
