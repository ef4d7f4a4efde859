"""Tenancy for the hospital API: only a hospital's staff get in, and only to their own hospital."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import Http404
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from hospitals.models import Hospital
from hospitals.selectors import hospital_of

_CACHE_ATTR = "_staff_hospital"


def remember_hospital(request: Any, hospital: Hospital | None) -> None:
    """Set the request's hospital when the authentication has already read it (``hospitals.token_auth``)."""
    setattr(request, _CACHE_ATTR, hospital)


def current_hospital(request: Any) -> Hospital:
    """The requesting user's hospital (cached on the request); PermissionDenied if there is none."""
    if not hasattr(request, _CACHE_ATTR):
        setattr(request, _CACHE_ATTR, hospital_of(request.user))
    hospital = getattr(request, _CACHE_ATTR)
    if hospital is None:
        raise PermissionDenied("You are not a staff member of any hospital.")
    return hospital


class IsHospitalStaff(BasePermission):
    """Authenticated (else 401) and a staff member of a hospital (else 403)."""

    message = "You are not a staff member of any hospital."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        current_hospital(request)
        return True


class HospitalScopedMixin:
    """Views whose objects belong to a hospital: everything is filtered to the user's own."""

    permission_classes = [IsHospitalStaff]

    @property
    def hospital(self) -> Hospital:
        return current_hospital(self.request)  # type: ignore[attr-defined]

    @staticmethod
    def object_id(pk: str | None) -> uuid.UUID:
        """The URL's id as a UUID; 404 when it is not one (never a 500 from the database lookup)."""
        try:
            return uuid.UUID(str(pk))
        except ValueError:
            raise Http404 from None
