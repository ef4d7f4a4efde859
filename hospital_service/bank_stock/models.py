"""The last-known blood bank stock (a read model kept from the bank's events) and its alerts."""

from __future__ import annotations

from blood_requests.models import BLOOD_GROUP_CHOICES, COMPONENT_CHOICES
from django.db import models

from shared_events.enums import StockCrossing, StockLevel


class BankStock(models.Model):
    component = models.CharField(max_length=16, choices=COMPONENT_CHOICES)
    blood_group = models.CharField(max_length=3, choices=BLOOD_GROUP_CHOICES)
    available_units = models.PositiveIntegerField(default=0)
    expiring_within_72h = models.PositiveIntegerField(default=0)
    level = models.CharField(max_length=8, choices=[(level.value, level.value) for level in StockLevel])
    days_of_supply = models.DecimalField(
        max_digits=7,
        decimal_places=1,
        null=True,
        blank=True,
        help_text="Available units / mean daily issue over 28 days, as the bank reported it; null: none issued "
        "(or not reported).",
    )
    as_of = models.DateTimeField(help_text="When the bank counted it (the event's as_of).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["component", "blood_group"]
        constraints = [models.UniqueConstraint(fields=["component", "blood_group"], name="bank_stock_per_key")]

    def __str__(self) -> str:
        return f"{self.component} {self.blood_group}: {self.available_units} ({self.level})"


class StockAlert(models.Model):
    """A crossing the bank reported (LOW, CRITICAL, RECOVERED), kept for the dashboard's alerts."""

    event_id = models.UUIDField(unique=True)
    component = models.CharField(max_length=16, choices=COMPONENT_CHOICES)
    blood_group = models.CharField(max_length=3, choices=BLOOD_GROUP_CHOICES)
    level = models.CharField(max_length=9, choices=[(c.value, c.value) for c in StockCrossing])
    available_units = models.PositiveIntegerField()
    low_threshold = models.PositiveIntegerField()
    critical_threshold = models.PositiveIntegerField()
    as_of = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-as_of", "-id"]

    def __str__(self) -> str:
        return f"{self.level}: {self.component} {self.blood_group} ({self.available_units})"
