"""Blood requests of a hospital, their audit trail, and idempotency keys of their creation."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from blood_requests.lifecycle import RequestStatus
from shared_events.enums import BloodGroup, CancelReason, Component, Indication, Priority, choices

BLOOD_GROUP_CHOICES = choices(BloodGroup)
COMPONENT_CHOICES = choices(Component)
PRIORITY_CHOICES = [(p.value, p.value.title()) for p in Priority]
INDICATION_CHOICES = choices(Indication)
CANCEL_REASON_CHOICES = choices(CancelReason)
STATUS_CHOICES = [(s.value, s.value.replace("_", " ").title()) for s in RequestStatus]


class BloodRequest(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    hospital = models.ForeignKey("hospitals.Hospital", on_delete=models.PROTECT, related_name="blood_requests")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    blood_group = models.CharField(max_length=3, choices=BLOOD_GROUP_CHOICES)
    component = models.CharField(max_length=16, choices=COMPONENT_CHOICES)
    units = models.PositiveSmallIntegerField()
    priority = models.CharField(max_length=9, choices=PRIORITY_CHOICES)
    needed_by = models.DateTimeField(null=True, blank=True)
    allow_partial = models.BooleanField()
    patient_reference = models.CharField(max_length=64, blank=True, default="")
    # The indication travels to the bank as a code; ``reason`` is the free-text note, kept here only.
    indication = models.CharField(max_length=24, choices=INDICATION_CHOICES, default=Indication.OTHER.value)
    reason = models.CharField(max_length=500, blank=True, default="")
    status = models.CharField(max_length=18, choices=STATUS_CHOICES, default=RequestStatus.PENDING.value)

    # The bank's decision, as received.
    decision_reason_code = models.CharField(max_length=32, blank=True, default="")
    decision_detail = models.CharField(max_length=500, blank=True, default="")
    decided_at = models.DateTimeField(null=True, blank=True)
    units_allocated = models.PositiveSmallIntegerField(default=0)
    allocations = models.JSONField(default=list, blank=True, encoder=DjangoJSONEncoder)
    released_unit_ids = models.JSONField(default=list, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)

    # The bank's dispatch (units as in bloodbank.units.dispatched) and their receipt by DIN scan.
    dispatched_units = models.JSONField(default=list, blank=True, encoder=DjangoJSONEncoder)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)

    cancel_reason_code = models.CharField(max_length=16, choices=CANCEL_REASON_CHOICES, null=True, blank=True)  # noqa: DJ001 - null until cancelled (the schema enum has no "")
    cancel_reason = models.CharField(max_length=500, blank=True, default="")  # free text: stays here
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    # Watchdog: how often and when the request event was last published.
    times_published = models.PositiveIntegerField(default=1)
    last_published_at = models.DateTimeField(default=timezone.now)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["hospital", "-created_at"], name="request_hospital_newest"),
            models.Index(fields=["status", "last_published_at"], name="request_watchdog"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(units__gte=1, units__lte=20), name="request_units_1_to_20"),
        ]

    def __str__(self) -> str:
        return f"{self.units} x {self.component} {self.blood_group} ({self.status})"


class StatusChange(models.Model):
    """One line of a request's audit trail: never edited or deleted."""

    request = models.ForeignKey(BloodRequest, on_delete=models.PROTECT, related_name="history")
    status = models.CharField(max_length=18, choices=STATUS_CHOICES)
    at = models.DateTimeField(default=timezone.now)
    detail = models.CharField(max_length=500, blank=True, default="")
    event_id = models.UUIDField(null=True, blank=True, help_text="The event that caused the change, if any.")

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.request_id} → {self.status} at {self.at:%Y-%m-%d %H:%M:%S}"


class IdempotencyRecord(models.Model):
    """The first response to a POST with an ``Idempotency-Key``, per user and hospital."""

    hospital = models.ForeignKey("hospitals.Hospital", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the canonical request body.")
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField(encoder=DjangoJSONEncoder, null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hospital", "user", "key"], name="idempotency_key_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.user_id}, {self.response_status})"
