"""Who may use the bank's API: blood bank staff only."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

BANK_STAFF_GROUP = "bank_staff"


def is_bank_staff(user) -> bool:
    return bool(
        user and user.is_authenticated and (user.is_staff or user.groups.filter(name=BANK_STAFF_GROUP).exists())
    )


class IsBankStaff(BasePermission):
    """Django staff or a member of the ``bank_staff`` group (others: 403)."""

    message = "Blood bank staff only."

    def has_permission(self, request, view) -> bool:
        return is_bank_staff(request.user)
