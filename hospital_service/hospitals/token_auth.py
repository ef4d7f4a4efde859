"""The hospital API's token check: knox's, with the token, its user and the user's hospital in one prepared query.

Every hospital API call authenticates its token (one query) and then looks up the
user's hospital (``IsHospitalStaff``, another); under load the ORM's building of those
two statements was about a third of a POST's CPU. Here one statement, built once per
connection, reads the token with its user and the user's staff membership and hospital
(LEFT JOINs: a user without one still authenticates, and is then refused with 403 as before).

Like ``shared_events.django.token_auth``, this module imports no view: DRF imports the
authentication classes named in its settings while ``rest_framework.views`` is being imported.
"""

from __future__ import annotations

import binascii
from hmac import compare_digest

from django.contrib.auth.models import AbstractBaseUser
from django.utils.translation import gettext_lazy as _
from knox.crypto import hash_token
from knox.models import AuthToken, get_token_model
from knox.settings import CONSTANTS, knox_settings
from rest_framework import exceptions
from rest_framework.request import Request

from hospitals.models import StaffMembership
from hospitals.permissions import remember_hospital
from shared_events.django.prepared import Prepared
from shared_events.django.token_auth import ExpiringTokenAuthentication

# The tokens of one key (knox's own query), each with its user and the user's membership and hospital.
_tokens_of_key = Prepared(
    lambda token_key: (
        get_token_model()
        .objects.filter(token_key=token_key)
        .select_related("user", "user__hospital_membership__hospital")
    ),
    token_key=str,
)
# user.hospital_membership, as select_related caches it (None when the user has no membership).
_MEMBERSHIP = StaffMembership._meta.get_field("user").remote_field


class StaffTokenAuthentication(ExpiringTokenAuthentication):
    """``ExpiringTokenAuthentication`` (same tokens accepted and refused), whose query also brings the hospital."""

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, AuthToken] | None:
        found = super().authenticate(request)
        if found is not None and _MEMBERSHIP.is_cached(found[0]):
            membership = _MEMBERSHIP.get_cached_value(found[0])
            remember_hospital(request, membership.hospital if membership is not None else None)
        return found

    def authenticate_credentials(self, token: bytes) -> tuple[AbstractBaseUser, AuthToken]:
        """knox 5.1's ``authenticate_credentials`` line for line, its query prepared."""
        msg = _("Invalid token.")
        key = token.decode("utf-8")
        for auth_token in _tokens_of_key.all(token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH]):
            if self._cleanup_token(auth_token):
                continue
            try:
                digest = hash_token(key)
            except (TypeError, binascii.Error):
                raise exceptions.AuthenticationFailed(msg) from None
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed(msg)
