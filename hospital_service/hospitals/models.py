"""Hospitals (the tenants) and which hospital each staff user works for."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Hospital(models.Model):
    # Fixed ids (shared_events.demo) so the three services' databases agree without talking.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class StaffMembership(models.Model):
    """A user belongs to exactly one hospital; a user without one cannot use the hospital API."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="hospital_membership")
    hospital = models.ForeignKey(Hospital, on_delete=models.PROTECT, related_name="staff")
    joined_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} @ {self.hospital}"
