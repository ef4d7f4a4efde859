"""Reads about hospitals and their staff."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from hospitals.models import Hospital, StaffMembership
from shared_events.django.prepared import Prepared


def hospital_of(user: AbstractBaseUser | AnonymousUser) -> Hospital | None:
    """The hospital ``user`` works for, or None (anonymous, or not a member of any hospital)."""
    if not user or not user.is_authenticated:
        return None
    membership = _membership_of.first(user_id=user.pk)
    return membership.hospital if membership else None


# Asked on every API call and dashboard page not authenticated by token: its SQL is built once.
_membership_of = Prepared(
    lambda user_id: StaffMembership.objects.select_related("hospital").filter(user_id=user_id).order_by("pk")[:1],
    user_id=int,
)
