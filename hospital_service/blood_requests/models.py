"""Blood requests of a hospital, their audit trail, and idempotency keys of their creation."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from blood_requests.lifecycle import PackStatus, RequestStatus
from shared_events.django.fields import JSONList
from shared_events.enums import (
    ANTIGENS,
    UNKNOWN_GROUP,
    BloodGroup,
    CancelReason,
    Component,
    Indication,
    Priority,
    RequestProtocol,
    SpecialRequirement,
    UnitAttribute,
    choices,
)

BLOOD_GROUP_CHOICES = choices(BloodGroup)
# A request may also be for a patient not yet typed (emergency release, transfusion.md section 5).
REQUEST_BLOOD_GROUP_CHOICES = [*BLOOD_GROUP_CHOICES, (UNKNOWN_GROUP, "Unknown (emergency release)")]
PROTOCOL_CHOICES = choices(RequestProtocol)
_ATTRIBUTE_LABELS = {
    UnitAttribute.IRRADIATED: "Irradiated",
    UnitAttribute.CMV_NEGATIVE: "CMV-negative",
    UnitAttribute.LEUKOREDUCED: "Leukoreduced",
    UnitAttribute.WASHED: "Washed",
    UnitAttribute.HBS_NEGATIVE: "HbS-negative",
    UnitAttribute.HT_NEGATIVE: "High-titre negative",
}
SPECIAL_REQUIREMENT_CHOICES = [(r.value, _ATTRIBUTE_LABELS[UnitAttribute(r.value)]) for r in SpecialRequirement]
UNIT_ATTRIBUTE_CHOICES = [(a.value, _ATTRIBUTE_LABELS[a]) for a in UnitAttribute]
ANTIGEN_CHOICES = [(antigen, antigen) for antigen in ANTIGENS]
PACK_STATUS_CHOICES = [(s.value, s.value.replace("_", " ").title()) for s in PackStatus]
COMPONENT_CHOICES = choices(Component)
PRIORITY_CHOICES = [(p.value, p.value.title()) for p in Priority]
INDICATION_CHOICES = choices(Indication)
CANCEL_REASON_CHOICES = choices(CancelReason)
STATUS_CHOICES = [(s.value, s.value.replace("_", " ").title()) for s in RequestStatus]


class BloodRequest(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    hospital = models.ForeignKey("hospitals.Hospital", on_delete=models.PROTECT, related_name="blood_requests")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    blood_group = models.CharField(max_length=7, choices=REQUEST_BLOOD_GROUP_CHOICES)
    protocol = models.CharField(max_length=8, choices=PROTOCOL_CHOICES, default=RequestProtocol.STANDARD.value)
    # NULL for an MTP request: its packs say what is sent (the API shows null).
    component = models.CharField(max_length=16, choices=COMPONENT_CHOICES, null=True, blank=True)  # noqa: DJ001
    units = models.PositiveSmallIntegerField(null=True, blank=True)
    priority = models.CharField(max_length=9, choices=PRIORITY_CHOICES)
    needed_by = models.DateTimeField(null=True, blank=True)
    allow_partial = models.BooleanField()
    patient_reference = models.CharField(max_length=64, blank=True, default="")
    # The indication travels to the bank as a code; ``reason`` is the free-text note, kept here only.
    indication = models.CharField(max_length=24, choices=INDICATION_CHOICES, default=Indication.OTHER.value)
    reason = models.CharField(max_length=500, blank=True, default="")
    # transfusion.md sections 5-7: who authorised an emergency release or an MTP, the group rule, the needs.
    authorised_by = models.CharField(max_length=150, blank=True, default="")
    group_confirmed = models.BooleanField(
        default=False, help_text="Two independent ABO/RhD determinations agree; false: group O red cells, AB plasma."
    )
    rhd_negative_required = models.BooleanField(default=True)
    # JSON lists of codes, not PostgreSQL arrays: `make run` may use SQLite.
    special_requirements = JSONList()  # SpecialRequirement codes
    antigen_negative = JSONList()  # antigens the units must lack (shared_events.enums.ANTIGENS)
    uncrossmatched = models.BooleanField(default=False, help_text="The bank issued units uncrossmatched.")
    mtp_stopped_at = models.DateTimeField(null=True, blank=True)
    mtp_stopped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
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
            models.CheckConstraint(
                condition=models.Q(units__isnull=True) | models.Q(units__gte=1, units__lte=20),
                name="request_units_1_to_20",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(protocol=RequestProtocol.MTP.value, component__isnull=True, units__isnull=True)
                    | (
                        models.Q(protocol=RequestProtocol.STANDARD.value)
                        & models.Q(component__isnull=False, units__isnull=False)
                    )
                ),
                name="request_mtp_has_no_component_or_units",
            ),
        ]

    def __str__(self) -> str:
        if self.protocol == RequestProtocol.MTP:
            return f"MTP {self.blood_group} ({self.status})"
        return f"{self.units} x {self.component} {self.blood_group} ({self.status})"

    @property
    def is_mtp(self) -> bool:
        return self.protocol == RequestProtocol.MTP


class MtpPack(models.Model):
    """One pack of a massive transfusion protocol request: its own decision, dispatch and receipt."""

    request = models.ForeignKey(BloodRequest, on_delete=models.PROTECT, related_name="packs")
    number = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=18, choices=PACK_STATUS_CHOICES, default=PackStatus.REQUESTED.value)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    # The bank's decision, as received.
    decision_reason_code = models.CharField(max_length=32, blank=True, default="")
    decision_detail = models.CharField(max_length=500, blank=True, default="")
    decided_at = models.DateTimeField(null=True, blank=True)
    units_requested = models.PositiveSmallIntegerField(null=True, blank=True)
    units_allocated = models.PositiveSmallIntegerField(default=0)
    uncrossmatched = models.BooleanField(default=False)
    allocations = models.JSONField(default=list, blank=True, encoder=DjangoJSONEncoder)
    released_unit_ids = models.JSONField(default=list, blank=True)
    dispatched_units = models.JSONField(default=list, blank=True, encoder=DjangoJSONEncoder)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    # Watchdog (packs 2+: pack 1 travels with the request itself).
    times_published = models.PositiveIntegerField(default=1)
    last_published_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["request", "number"]
        constraints = [
            models.UniqueConstraint(fields=["request", "number"], name="mtp_pack_number_once"),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="mtp_pack_number_from_1"),
        ]
        indexes = [models.Index(fields=["status", "last_published_at"], name="mtp_pack_watchdog")]

    def __str__(self) -> str:
        return f"pack {self.number} of {self.request_id} ({self.status})"


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
