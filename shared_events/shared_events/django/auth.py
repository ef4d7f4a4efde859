"""The token login every service serves: ``POST /api/v1/auth/token/`` (DRF's ``ObtainAuthToken``),
rate-limited per client address against password guessing, with bounded parsers, documented."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle

from shared_events.demo import DEVELOPMENT_PASSWORD
from shared_events.django.body_limits import BoundedJSONParser


class LoginRateThrottle(AnonRateThrottle):
    """``POST /api/v1/auth/token/`` per client address: ``LOGIN_THROTTLE_RATE`` (30/minute), then 429."""

    scope = "login"

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)  # read per request: settings can change


class ObtainAuthTokenThrottled(ObtainAuthToken):
    """DRF's token login (JSON, or a form), throttled."""

    throttle_classes = [LoginRateThrottle]
    parser_classes = (BoundedJSONParser, FormParser, MultiPartParser)  # bodies are 64 KiB at most anyway

    @extend_schema(
        summary="Log in: get this service's API token",
        description="Exchange a username and password for this service's token (the same one on every call). "
        "Send it as `Authorization: Token <key>`; in Swagger UI click **Authorize** and paste `Token <key>`. "
        "Wrong credentials are 400 (`non_field_errors`). Needs no credentials itself; a form body works too.",
        tags=["auth"],
        auth=[],
        request={"application/json": AuthTokenSerializer},
        responses={
            200: inline_serializer("AuthToken", {"token": serializers.CharField()}),
            429: OpenApiResponse(description="Too many login attempts from this address; try again later."),
        },
        examples=[
            OpenApiExample(
                "Hospital staff (demo data)",
                value={"username": "stmary_staff", "password": DEVELOPMENT_PASSWORD},
                request_only=True,
            ),
            OpenApiExample(
                "The token", value={"token": "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"}, response_only=True
            ),
        ],
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


obtain_auth_token = ObtainAuthTokenThrottled.as_view()
