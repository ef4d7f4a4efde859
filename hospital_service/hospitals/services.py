"""Writes about hospitals and staff (used by ``seed_demo`` and admins)."""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import transaction

from hospitals.models import Hospital, StaffMembership


def ensure_hospital(*, hospital_id: uuid.UUID, name: str) -> Hospital:
    """The hospital with this id, created or renamed to ``name``; idempotent."""
    hospital, _ = Hospital.objects.update_or_create(id=hospital_id, defaults={"name": name})
    return hospital


@transaction.atomic
def ensure_staff_user(*, username: str, password: str, hospital: Hospital) -> AbstractUser:
    """A login for ``username`` that is staff of ``hospital``; an existing user keeps its password."""
    user, created = get_user_model().objects.get_or_create(username=username)
    if created:
        user.set_password(password)
        user.save(update_fields=["password"])
    StaffMembership.objects.update_or_create(user=user, defaults={"hospital": hospital})
    return user
