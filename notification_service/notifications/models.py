"""In-app notifications, who receives them, and what this service knows from past events.

An *audience* is ``bloodbank`` or ``hospital:<hospital_id>``; every user belongs
to exactly one (``Recipient``) and sees only that audience's notifications.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from shared_events.enums import UNKNOWN_GROUP, BloodGroup, Component, Priority, RequestProtocol, choices

AUDIENCE_PATTERN = r"^(bloodbank|hospital:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
BLOOD_GROUP_CHOICES = choices(BloodGroup)
COMPONENT_CHOICES = choices(Component)
PRIORITY_CHOICES = [(p.value, p.value) for p in Priority]
REQUEST_BLOOD_GROUP_CHOICES = [*BLOOD_GROUP_CHOICES, (UNKNOWN_GROUP, "Unknown")]
PROTOCOL_CHOICES = choices(RequestProtocol)


class Kind(models.TextChoices):
    REQUEST_CREATED = "REQUEST_CREATED"
    REQUEST_APPROVED = "REQUEST_APPROVED"
    REQUEST_PARTIALLY_APPROVED = "REQUEST_PARTIALLY_APPROVED"
    REQUEST_REJECTED = "REQUEST_REJECTED"
    REQUEST_CANCELLED = "REQUEST_CANCELLED"
    ALLOCATION_RELEASED = "ALLOCATION_RELEASED"
    INVENTORY_UPDATED = "INVENTORY_UPDATED"
    STOCK_LOW = "STOCK_LOW"
    STOCK_CRITICAL = "STOCK_CRITICAL"
    STOCK_RECOVERED = "STOCK_RECOVERED"
    UNITS_DISPATCHED = "UNITS_DISPATCHED"
    UNITS_RECEIVED = "UNITS_RECEIVED"
    ADVERSE_REACTION = "ADVERSE_REACTION"
    FATE_OVERDUE = "FATE_OVERDUE"
    RECALL_ISSUED = "RECALL_ISSUED"
    RECALL_ACKNOWLEDGED = "RECALL_ACKNOWLEDGED"
    # transfusion.md section 10
    EMERGENCY_RELEASE_APPROVED = "EMERGENCY_RELEASE_APPROVED"
    MTP_PACK_REQUESTED = "MTP_PACK_REQUESTED"
    MTP_STOPPED = "MTP_STOPPED"
    # Not in api.md's list: a CRITICAL notification left unread, raised again once.
    ESCALATION = "ESCALATION"


class Severity(models.TextChoices):
    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


audience_validator = RegexValidator(AUDIENCE_PATTERN, "Audience must be 'bloodbank' or 'hospital:<uuid>'.")


class Recipient(models.Model):
    """The one audience a user reads notifications for."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="recipient"
    )
    audience = models.CharField(max_length=60, validators=[audience_validator], db_index=True)

    def __str__(self) -> str:
        return f"{self.user} → {self.audience}"


class KnownHospital(models.Model):
    """A hospital this service has heard of (seeded users or request events): stock alerts fan out to each."""

    id = models.UUIDField(primary_key=True)
    name = models.CharField(max_length=200, blank=True, default="")
    first_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name or str(self.id)

    @property
    def audience(self) -> str:
        return f"hospital:{self.id}"


class KnownRequest(models.Model):
    """What a request was (from ``hospital.blood.requested``), so later events read as full sentences."""

    request_id = models.UUIDField(primary_key=True)
    hospital_id = models.UUIDField()
    hospital_name = models.CharField(max_length=200)
    blood_group = models.CharField(max_length=7, choices=REQUEST_BLOOD_GROUP_CHOICES)  # UNKNOWN: emergency release
    protocol = models.CharField(max_length=8, choices=PROTOCOL_CHOICES, default=RequestProtocol.STANDARD.value)
    # NULL for an MTP request (v2 of hospital.blood.requested): its packs say what is sent.
    component = models.CharField(max_length=20, choices=COMPONENT_CHOICES, null=True, blank=True)  # noqa: DJ001
    units = models.PositiveSmallIntegerField(null=True, blank=True)
    priority = models.CharField(max_length=10, choices=PRIORITY_CHOICES)
    requested_at = models.DateTimeField()

    def __str__(self) -> str:
        if self.protocol == RequestProtocol.MTP:
            return f"{self.request_id} (MTP {self.blood_group})"
        return f"{self.request_id} ({self.units} {self.blood_group} {self.component})"


class FeedSequence(models.Model):
    """A counter row whose lock serialises notification writes.

    Every stored or changed notification takes the next ``feed_seq`` while
    holding this row's lock until its transaction commits, so sequence order is
    commit order: a live-feed reader that has seen ``N`` can never later find a
    committed ``N - 1`` it skipped (the guarantee behind ``Last-Event-ID``).
    """

    name = models.CharField(max_length=40, primary_key=True)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class Notification(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    audience = models.CharField(max_length=60, validators=[audience_validator])
    kind = models.CharField(max_length=40, choices=Kind.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    title = models.CharField(max_length=200)
    body = models.TextField()
    source_event_id = models.UUIDField()
    source_event_type = models.CharField(max_length=100)
    correlation_id = models.CharField(max_length=100, blank=True, default="")
    request_id = models.UUIDField(null=True, blank=True, db_index=True)
    pack = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The MTP pack the notification is about (null: not about a pack)."
    )
    # NULL, not "": the API shows null where a notification is not about one stock item.
    component = models.CharField(max_length=20, choices=COMPONENT_CHOICES, null=True, blank=True)  # noqa: DJ001
    blood_group = models.CharField(max_length=3, choices=BLOOD_GROUP_CHOICES, null=True, blank=True)  # noqa: DJ001
    occurred_at = models.DateTimeField(help_text="When the reported fact happened (the event's time or as_of).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    read_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalation_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="escalations"
    )
    feed_seq = models.BigIntegerField(unique=True, help_text="Live-feed position; moves up when the row changes.")

    class Meta:
        ordering = ["-occurred_at", "-feed_seq"]
        constraints = [
            models.UniqueConstraint(
                fields=["source_event_id", "audience", "kind"], name="notification_once_per_event_audience_kind"
            ),
            # Once per request (and MTP pack: each pack is decided, dispatched, received on its own).
            models.UniqueConstraint(
                fields=["request_id", "pack", "audience", "kind"],
                condition=Q(request_id__isnull=False) & ~Q(kind="ESCALATION"),
                nulls_distinct=False,
                name="notification_once_per_request_pack_audience_kind",
            ),
            models.UniqueConstraint(
                fields=["audience", "component", "blood_group"],
                condition=Q(kind="INVENTORY_UPDATED", read_at__isnull=True),
                name="one_unread_inventory_update_per_stock_key",
            ),
        ]
        indexes = [
            models.Index(fields=["audience", "-feed_seq"], name="notification_feed_idx"),
            models.Index(fields=["audience", "-occurred_at", "-feed_seq"], name="notification_list_idx"),
            models.Index(fields=["audience"], condition=Q(read_at__isnull=True), name="notification_unread_idx"),
            models.Index(
                fields=["created_at"],
                condition=Q(severity="CRITICAL", read_at__isnull=True, escalated_at__isnull=True),
                name="notification_to_escalate_idx",
            ),
            # A stock count's notices, read or not (services._told_sql): the "told already" check of an update in
            # place scanned every notice of the audience otherwise, a cost that grew with all notifications ever.
            models.Index(
                fields=["audience", "component", "blood_group", "occurred_at"],
                condition=Q(kind="INVENTORY_UPDATED"),
                name="notification_stock_count_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"[{self.audience}] {self.kind}: {self.title}"

    @property
    def read(self) -> bool:
        return self.read_at is not None


class StreamTicket(models.Model):
    """A short-lived, single-use pass to open the live feed once (``?ticket=``), for EventSource clients
    that cannot send the token header. Only its SHA-256 digest is stored."""

    digest = models.CharField(max_length=64, primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"stream ticket of {self.user_id} until {self.expires_at:%H:%M:%S}"  # never the ticket itself


class OpenStream(models.Model):
    """A live-feed stream being served, so every web process counts a user's open streams together.

    Deleted when the stream ends; one whose process died ages out at ``expires_at``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    opened_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"stream {self.id} of {self.user_id}"
