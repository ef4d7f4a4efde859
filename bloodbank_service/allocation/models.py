"""The bank's copy of each blood request, its decision, and the allocations it made."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from inventory.models import COMPONENT_CHOICES, GROUP_CHOICES, Unit

from shared_events.django.fields import JSONList
from shared_events.enums import (
    UNKNOWN_GROUP,
    CancelReason,
    Indication,
    Priority,
    RejectReason,
    RequestProtocol,
    choices,
)

PRIORITY_CHOICES = [(p.value, p.value) for p in Priority]
REASON_CHOICES = [(r.value, r.value) for r in RejectReason]
# A request's group may be UNKNOWN (emergency release, transfusion.md section 5); a unit's never is.
REQUEST_GROUP_CHOICES = [*GROUP_CHOICES, (UNKNOWN_GROUP, "Unknown (emergency release)")]


class RequestStatus(models.TextChoices):
    WAITING = "WAITING", "waiting for a decision"
    APPROVED = "APPROVED"
    PARTIALLY_APPROVED = "PARTIALLY_APPROVED"
    REJECTED = "REJECTED"
    # MTP (transfusion.md section 7): packs are decided one by one from pack 1's decision on, until stopped.
    MTP_ACTIVE = "MTP_ACTIVE", "MTP active"
    MTP_STOPPED = "MTP_STOPPED", "MTP stopped"


class BankRequest(models.Model):
    """A hospital's request as the bank saw it, and the bank's decision on it.

    A cancel that arrives first creates the row with the hospital id only
    (the request's details are filled in if the request arrives later).
    """

    request_id = models.UUIDField(primary_key=True)
    hospital_id = models.UUIDField(db_index=True)
    hospital_name = models.CharField(max_length=200, blank=True)
    blood_group = models.CharField(max_length=7, choices=REQUEST_GROUP_CHOICES, blank=True)
    protocol = models.CharField(max_length=8, choices=choices(RequestProtocol), default=RequestProtocol.STANDARD.value)
    # Blank for an MTP request: its packs say what is sent.
    component = models.CharField(max_length=20, choices=COMPONENT_CHOICES, blank=True)
    units_requested = models.PositiveSmallIntegerField(null=True, blank=True)
    # "EMERGENCY" sorts before "SCHEDULED": the deferred decision step orders by it.
    priority = models.CharField(max_length=10, choices=PRIORITY_CHOICES, blank=True)
    needed_by = models.DateTimeField(null=True, blank=True)
    allow_partial = models.BooleanField(null=True, blank=True)
    patient_reference = models.CharField(max_length=64, blank=True)
    # A code: the hospital's free-text note never reaches the bank (it could name the patient).
    indication = models.CharField(max_length=24, choices=choices(Indication), null=True, blank=True)  # noqa: DJ001 - null: not sent (the schema enum has no "")
    # The clinician who authorised an emergency release or an MTP.
    authorised_by = models.CharField(max_length=150, blank=True)
    # False (the safe choice, and every request before issue 14): group O red cells, AB/A plasma only.
    group_confirmed = models.BooleanField(default=False, help_text="two concordant ABO/RhD determinations")
    rhd_negative_required = models.BooleanField(default=True)
    # JSON lists (as the unit's attributes): SpecialRequirement values and ANTIGENS.
    special_requirements = JSONList()
    antigen_negative = JSONList()
    requested_by = models.CharField(max_length=150, blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)
    correlation_id = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField()

    status = models.CharField(max_length=20, choices=RequestStatus.choices, default=RequestStatus.WAITING)
    reason_code = models.CharField(max_length=30, choices=REASON_CHOICES, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    units_allocated = models.PositiveSmallIntegerField(default=0)
    decided_at = models.DateTimeField(null=True, blank=True)
    # The decision event exactly as published, re-sent byte for byte on a repeat.
    decision_event_id = models.UUIDField(null=True, blank=True)
    decision_event_type = models.CharField(max_length=60, blank=True)
    decision_event = models.BinaryField(null=True, blank=True, editable=False)

    # An emergency release (group UNKNOWN): the units were given uncrossmatched.
    uncrossmatched = models.BooleanField(default=False)

    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.CharField(max_length=150, blank=True)
    cancel_reason_code = models.CharField(max_length=16, choices=choices(CancelReason), null=True, blank=True)  # noqa: DJ001 - as above
    mtp_stopped_at = models.DateTimeField(null=True, blank=True)
    mtp_stopped_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name = "request"
        indexes = [
            models.Index(fields=["priority", "received_at"], condition=Q(status="WAITING"), name="request_waiting_idx"),
        ]

    def __str__(self) -> str:
        if self.protocol == RequestProtocol.MTP:
            return f"{self.request_id} MTP {self.blood_group} ({self.status})"
        return f"{self.request_id} {self.units_requested or '?'} x {self.component} {self.blood_group} ({self.status})"

    @property
    def is_decided(self) -> bool:
        return self.status != RequestStatus.WAITING

    @property
    def is_mtp(self) -> bool:
        return self.protocol == RequestProtocol.MTP


class MtpPack(models.Model):
    """One pack of an MTP request and the bank's decision on it (transfusion.md section 7).

    Pack 1 is decided when the request arrives, pack N when the hospital asks for it. The decision
    event is kept exactly as published and re-sent byte for byte when the same pack is asked again.
    """

    class Status(models.TextChoices):
        APPROVED = "APPROVED"
        PARTIALLY_APPROVED = "PARTIALLY_APPROVED"
        REJECTED = "REJECTED"

    id = models.BigAutoField(primary_key=True)
    request = models.ForeignKey(BankRequest, on_delete=models.PROTECT, related_name="packs")
    number = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices)
    reason_code = models.CharField(max_length=30, choices=REASON_CHOICES, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    units_requested = models.PositiveSmallIntegerField()
    units_allocated = models.PositiveSmallIntegerField(default=0)
    requested_by = models.CharField(max_length=150, blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField()
    decision_event_id = models.UUIDField()
    decision_event_type = models.CharField(max_length=60)
    decision_event = models.BinaryField(editable=False)

    class Meta:
        ordering = ["request", "number"]
        verbose_name = "MTP pack"
        constraints = [models.UniqueConstraint(fields=["request", "number"], name="mtp_pack_once_per_request")]

    def __str__(self) -> str:
        return f"pack {self.number} of {self.request_id} ({self.status})"


class Allocation(models.Model):
    """A unit given to a request; released (never deleted) when the request is cancelled."""

    id = models.BigAutoField(primary_key=True)
    request = models.ForeignKey(BankRequest, on_delete=models.PROTECT, related_name="allocations")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="allocations")
    allocated_at = models.DateTimeField()
    released_at = models.DateTimeField(null=True, blank=True)
    release_reason = models.CharField(max_length=100, blank=True)
    # The MTP pack the unit was allocated for (null: a STANDARD request).
    pack = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["allocated_at", "id"]
        constraints = [
            # The database itself refuses a unit in two live allocations.
            models.UniqueConstraint(
                fields=["unit"], condition=Q(released_at__isnull=True), name="allocation_one_live_per_unit"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.unit_id} -> {self.request_id}{' (released)' if self.released_at else ''}"
