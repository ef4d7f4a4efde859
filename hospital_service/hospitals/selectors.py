"""Reads about hospitals and their staff."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from hospitals.models import Hospital, StaffMembership


def hospital_of(user: AbstractBaseUser | AnonymousUser) -> Hospital | None:
    """The hospital ``user`` works for, or None (anonymous, or not a member of any hospital)."""
    if not user or not user.is_authenticated:
        return None
    membership = StaffMembership.objects.select_related("hospital").filter(user=user).first()
    return membership.hospital if membership else None
