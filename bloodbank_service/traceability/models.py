"""Dispatches, the fates hospitals report, recalls and their per-unit answers. Nothing here is deleted.

EU 2005/61/EC Art. 4 (traceability data ≥ 30 years) and 21 CFR 606.160(d)/606.165
(distribution and receipt records): every row is kept; the admin is read-only.
"""

from __future__ import annotations

import uuid

from allocation.models import BankRequest
from django.db import models
from django.db.models import Q
from inventory.models import Unit

from shared_events.enums import Fate, RecallReason, RecallSeverity, WasteReason, choices

RECALL_REASON_CHOICES = choices(RecallReason)  # one name in the OpenAPI schema: RecallReasonEnum


class Dispatch(models.Model):
    """The units of one request leaving the bank (``pack`` is for MTP packs; null: the whole request)."""

    id = models.BigAutoField(primary_key=True)
    request = models.ForeignKey(BankRequest, on_delete=models.PROTECT, related_name="dispatches")
    pack = models.PositiveSmallIntegerField(null=True, blank=True)
    units = models.ManyToManyField(Unit, related_name="dispatches")
    dispatched_at = models.DateTimeField()
    dispatched_by = models.CharField(max_length=150)
    courier = models.CharField(max_length=100, blank=True)
    note = models.CharField(max_length=500, blank=True, help_text="kept at the bank, never sent")
    received_at = models.DateTimeField(null=True, blank=True)
    received_by = models.CharField(max_length=150, blank=True)
    event_id = models.UUIDField()

    class Meta:
        ordering = ["-dispatched_at"]
        verbose_name_plural = "dispatches"
        constraints = [
            models.UniqueConstraint(
                fields=["request"], condition=Q(pack__isnull=True), name="dispatch_once_per_request"
            ),
            models.UniqueConstraint(fields=["request", "pack"], name="dispatch_once_per_pack"),
        ]

    def __str__(self) -> str:
        return f"dispatch of {self.request_id} at {self.dispatched_at:%Y-%m-%d %H:%M}"


class UnitFate(models.Model):
    """What became of a unit issued for a request, as the hospital recorded it: once per unit and issue."""

    id = models.BigAutoField(primary_key=True)
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="fates")
    request = models.ForeignKey(BankRequest, on_delete=models.PROTECT, related_name="fates")
    hospital_id = models.UUIDField(db_index=True)
    fate = models.CharField(max_length=12, choices=choices(Fate))
    recorded_by = models.CharField(max_length=150)
    recorded_at = models.DateTimeField()
    patient_reference = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    adverse_reaction = models.BooleanField(default=False)
    waste_reason = models.CharField(max_length=30, choices=choices(WasteReason), blank=True)
    left_storage_at = models.DateTimeField(null=True, blank=True)
    returned_at = models.DateTimeField(null=True, blank=True)
    cold_chain_intact = models.BooleanField(null=True, blank=True)
    bank_decision = models.CharField(max_length=12, blank=True, help_text="returns: QUARANTINED or WASTED")
    bank_waste_reason = models.CharField(max_length=30, choices=choices(WasteReason), blank=True)
    event_id = models.UUIDField()

    class Meta:
        ordering = ["recorded_at", "id"]
        constraints = [models.UniqueConstraint(fields=["unit", "request"], name="fate_once_per_unit_and_issue")]

    def __str__(self) -> str:
        return f"{self.unit_id}: {self.fate}"


class RecallStatus(models.TextChoices):
    OPEN = "OPEN"
    CLOSED = "CLOSED"


class Recall(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dins = models.JSONField(default=list)
    reason = models.CharField(max_length=30, choices=RECALL_REASON_CHOICES)
    note = models.CharField(max_length=500, blank=True, help_text="kept at the bank, never sent")
    severity = models.CharField(max_length=6, choices=choices(RecallSeverity))
    status = models.CharField(max_length=6, choices=RecallStatus.choices, default=RecallStatus.OPEN)
    issued_by = models.CharField(max_length=150)
    issued_at = models.DateTimeField()
    closed_by = models.CharField(max_length=150, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at"]

    def __str__(self) -> str:
        return f"recall {str(self.id)[:8]} ({self.reason}, {self.status})"


class RecallUnit(models.Model):
    """One recalled unit: where it was and what is known of it."""

    id = models.BigAutoField(primary_key=True)
    recall = models.ForeignKey(Recall, on_delete=models.PROTECT, related_name="units")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="recalls")
    bank_status = models.CharField(max_length=12, help_text="the unit's status at the bank when recalled")
    hospital_id = models.UUIDField(null=True, blank=True, help_text="null: at the bank")
    request_id = models.UUIDField(null=True, blank=True)
    outcome = models.CharField(max_length=24, blank=True, help_text="blank: no answer yet")
    answered_at = models.DateTimeField(null=True, blank=True)
    patient_reference = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["recall", "unit__din", "id"]
        constraints = [models.UniqueConstraint(fields=["recall", "unit"], name="recall_unit_once")]

    def __str__(self) -> str:
        return f"{self.recall_id}: {self.unit_id} {self.outcome or 'no answer'}"


class OverdueAnnouncement(models.Model):
    """When ``bloodbank.fate.overdue`` last went to a hospital (once a day at most)."""

    hospital_id = models.UUIDField(primary_key=True)
    announced_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hospital_id} told at {self.announced_at:%Y-%m-%d %H:%M}"
