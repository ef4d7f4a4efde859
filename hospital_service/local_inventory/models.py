"""Units the hospital holds: received from the bank, then transfused, discarded or expired."""

from __future__ import annotations

import uuid

from blood_requests.models import BLOOD_GROUP_CHOICES, COMPONENT_CHOICES
from django.conf import settings
from django.db import models
from django.utils import timezone

from shared_events.django.fields import JSONList
from shared_events.enums import WasteReason, choices

WASTE_REASON_CHOICES = choices(WasteReason)  # one name for the choice set in the OpenAPI schema


class LocalUnitStatus(models.TextChoices):
    """AVAILABLE (or QUARANTINED by a recall) until its one final fate: TRANSFUSED, WASTED or RETURNED.

    WASTED replaces the former DISCARDED and EXPIRED (``waste_reason`` says why).
    """

    AVAILABLE = "AVAILABLE", "Available"
    QUARANTINED = "QUARANTINED", "Quarantined"
    TRANSFUSED = "TRANSFUSED", "Transfused"
    WASTED = "WASTED", "Wasted"
    RETURNED = "RETURNED", "Returned to the bank"


class LocalUnit(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    hospital = models.ForeignKey("hospitals.Hospital", on_delete=models.PROTECT, related_name="local_units")
    bank_unit_id = models.UUIDField(help_text="The unit's id at the blood bank.")
    din = models.CharField(max_length=32)
    # ISBT 128 product identity (transfusion.md section 8), as the bank dispatched the unit.
    product_code = models.CharField(max_length=8, blank=True, default="", help_text="e.g. E0398V00")
    division = models.CharField(max_length=2, default="00")
    special_attributes = JSONList()  # UnitAttribute codes
    component = models.CharField(max_length=16, choices=COMPONENT_CHOICES)
    blood_group = models.CharField(max_length=3, choices=BLOOD_GROUP_CHOICES)
    expires_at = models.DateTimeField()
    batch = models.CharField(max_length=64, blank=True, default="")
    source_request = models.ForeignKey(
        "blood_requests.BloodRequest", on_delete=models.PROTECT, related_name="local_units"
    )
    status = models.CharField(max_length=12, choices=LocalUnitStatus.choices, default=LocalUnitStatus.AVAILABLE)
    status_reason = models.CharField(max_length=500, blank=True, default="")
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    # The fate (transfusion.md sections 1 and 2); ``status_reason`` keeps the local free-text note.
    patient_reference = models.CharField(max_length=64, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    adverse_reaction = models.BooleanField(default=False)
    waste_reason = models.CharField(max_length=30, choices=WASTE_REASON_CHOICES, blank=True, default="")
    left_storage_at = models.DateTimeField(null=True, blank=True)
    returned_at = models.DateTimeField(null=True, blank=True)
    cold_chain_intact = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["expires_at", "din"]
        indexes = [models.Index(fields=["hospital", "status", "expires_at"], name="local_unit_stock")]
        constraints = [
            # Once per issue: a unit returned to the bank may be issued to this hospital again later.
            models.UniqueConstraint(fields=["source_request", "bank_unit_id"], name="local_unit_received_once"),
        ]

    def __str__(self) -> str:
        return f"{self.din} {self.component} {self.blood_group} ({self.status})"
