"""The token login every service serves, rate-limited per client address against password guessing."""

from __future__ import annotations

from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle


class LoginRateThrottle(AnonRateThrottle):
    """``POST /api/v1/auth/token/`` per client address: ``LOGIN_THROTTLE_RATE`` (30/minute), then 429."""

    scope = "login"

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)  # read per request: settings can change


class ObtainAuthTokenThrottled(ObtainAuthToken):
    throttle_classes = [LoginRateThrottle]


obtain_auth_token = ObtainAuthTokenThrottled.as_view()
