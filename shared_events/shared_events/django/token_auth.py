"""The API token check of every service (django-rest-knox), in a module of its own.

DRF imports the authentication classes named in its settings while ``rest_framework.views``
is being imported, so this module imports no view.
"""

from __future__ import annotations

from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.models import AuthToken
from knox.signals import token_expired


class ExpiringTokenAuthentication(TokenAuthentication):
    """knox's token check, without sweeping the user's other tokens on every call.

    knox reads every token of the user on each call to delete the expired ones: one query
    per API call. Here a call looks only at its own token, which is refused (and deleted)
    once expired, as knox does; the user's other expired tokens are deleted at their next
    login (``shared_events.django.auth.TokenLoginView``). Refused tokens are the same either way.
    """

    def _cleanup_token(self, auth_token: AuthToken) -> bool:
        if auth_token.expiry is None or auth_token.expiry >= timezone.now():
            return False
        auth_token.delete()
        token_expired.send(sender=self.__class__, username=auth_token.user.get_username(), source="auth_token")
        return True
