"""Logins every service serves, and what keeps them from being guessed or replayed.

* ``POST /api/v1/auth/token/``: username and password for an expiring API token
  (django-rest-knox: only a SHA-512 digest of the token is stored, and it expires
  after ``TOKEN_TTL_HOURS``). ``POST /api/v1/auth/logout/`` revokes the token the
  call carries, ``POST /api/v1/auth/logout-all/`` every credential of its user
  (tokens, browser sessions, and what a service hangs on them: ``credentials_revoked``);
  a password change revokes the tokens too (``revoke_tokens_on_password_change``;
  Django itself ends the sessions then).
* Every login (this one, ``/admin/login/``, ``/accounts/login/``) goes through
  ``django.contrib.auth.authenticate``, where django-axes counts failures per
  account and per client address in the database (so every worker of every
  process sees the same count) and refuses the account or address for
  ``LOGIN_LOCKOUT_MINUTES`` after ``LOGIN_FAILURE_LIMIT`` failures: 429.
* The token login is also rate-limited per client address (``LOGIN_THROTTLE_RATE``),
  counted in the database cache, shared by every worker.
* The client address is ``REMOTE_ADDR`` unless ``NUM_PROXIES`` trusted proxies
  stand in front: only then is it read from ``X-Forwarded-For`` (the entry the
  nearest trusted proxy added), so a made-up header changes nothing.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, authenticate
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import caches
from django.dispatch import Signal
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from knox.models import AuthToken
from knox.views import LoginView as KnoxLoginView
from knox.views import LogoutAllView as KnoxLogoutAllView
from knox.views import LogoutView as KnoxLogoutView
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, BaseThrottle

from shared_events.demo import DEVELOPMENT_PASSWORD
from shared_events.django.body_limits import BoundedJSONParser
from shared_events.django.token_auth import ExpiringTokenAuthentication

credentials_revoked = Signal()
"""Sent with ``user`` when every credential of that user ended (logout everywhere, a new password): a
service ends what it issued on top of them (the notification service: live-feed tickets)."""

LOCKED_OUT = "Too many failed logins for this account or from this address; try again later."


def client_ip(request: HttpRequest) -> str:
    """The caller's address: ``REMOTE_ADDR``, or with ``NUM_PROXIES`` = N > 0 the N-th address from the
    right of ``X-Forwarded-For`` (DRF's rule, shared by the throttle and django-axes)."""
    return BaseThrottle().get_ident(request)


def lockout_response(request: HttpRequest, _response: Any = None, _credentials: Any = None) -> HttpResponse:
    """What django-axes answers a locked-out login form with: 429, and when to come back."""
    from axes.helpers import get_cool_off

    cool_off = get_cool_off(request)
    headers = {"Retry-After": str(int(cool_off.total_seconds()))} if cool_off else {}
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": LOCKED_OUT}, status=429, headers=headers)
    return HttpResponse(LOCKED_OUT, status=429, content_type="text/plain; charset=utf-8", headers=headers)


class LoginRateThrottle(AnonRateThrottle):
    """``POST /api/v1/auth/token/`` per client address: ``LOGIN_THROTTLE_RATE`` (30/minute), then 429.

    Counted in the default cache, the database (``CACHES``), so every worker shares one count."""

    scope = "login"

    @property
    def cache(self):  # type: ignore[override]  # the settings' cache, looked up per request
        return caches["default"]

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)  # read per request: settings can change


class Credentials(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


TOKEN_RESPONSE = inline_serializer(
    "AuthToken",
    {
        "token": serializers.CharField(help_text="Send as `Authorization: Token <token>`."),
        "expiry": serializers.DateTimeField(help_text="The token stops working at this time."),
    },
)


class TokenLoginView(KnoxLoginView):
    """Username and password for a new expiring token (knox), counted by django-axes and throttled."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginRateThrottle]
    parser_classes = (BoundedJSONParser, FormParser, MultiPartParser)  # bodies are 64 KiB at most anyway

    @extend_schema(
        summary="Log in: get an API token of this service",
        description="Exchange a username and password for a new token of this service. It expires at `expiry` "
        "(`TOKEN_TTL_HOURS`, 10 by default) and ends sooner on `POST /api/v1/auth/logout/`, "
        "`POST /api/v1/auth/logout-all/` or a password change. Send it as `Authorization: Token <key>`; in "
        "Swagger UI click **Authorize** and paste `Token <key>`. Wrong credentials are 400 "
        "(`non_field_errors`); too many failures for the account or from the address lock both out (429). "
        "Needs no credentials itself; a form body works too.",
        tags=["auth"],
        auth=[],
        request={"application/json": Credentials},
        responses={
            200: TOKEN_RESPONSE,
            429: OpenApiResponse(description="Too many login attempts or failures; try again later."),
        },
        examples=[
            OpenApiExample(
                "Hospital staff (demo data)",
                value={"username": "stmary_staff", "password": DEVELOPMENT_PASSWORD},
                request_only=True,
            ),
            OpenApiExample(
                "The token",
                value={"token": "<64 hexadecimal characters>", "expiry": "2026-01-01T20:00:00Z"},
                response_only=True,
            ),
        ],
    )
    def post(self, request: Request, format: str | None = None) -> Response:
        credentials = Credentials(data=request.data)
        credentials.is_valid(raise_exception=True)
        user = authenticate(request=request, **credentials.validated_data)  # django-axes counts this attempt
        if getattr(request, "axes_locked_out", False):
            return lockout_response(request._request)  # type: ignore[return-value]
        if user is None:
            raise serializers.ValidationError(
                {"non_field_errors": ["Unable to log in with provided credentials."]}, code="authorization"
            )
        request.user = user
        AuthToken.objects.filter(user=user, expiry__lt=timezone.now()).delete()  # see shared_events.django.token_auth
        return super().post(request, format)


class _ServiceTokenOnly:
    """Logout takes the service's own token class (``ExpiringTokenAuthentication`` or the subclass its settings
    name, e.g. the hospital's), not knox's: one token scheme in the API schema, and a token, not a session."""

    def get_authenticators(self) -> list[BaseAuthentication]:
        classes = [
            cls for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES if issubclass(cls, ExpiringTokenAuthentication)
        ]
        return [cls() for cls in classes or [ExpiringTokenAuthentication]]


class LogoutView(_ServiceTokenOnly, KnoxLogoutView):
    @extend_schema(
        summary="Log out: revoke the token this call carries",
        tags=["auth"],
        request=None,
        responses={204: OpenApiResponse(description="The token no longer works.")},
    )
    def post(self, request: Request, format: str | None = None) -> Response:
        return super().post(request, format)


class LogoutAllView(_ServiceTokenOnly, KnoxLogoutAllView):
    @extend_schema(
        summary="Log out everywhere: revoke every token and end every browser session of this user",
        description="Every API token of the caller stops working, every browser session of theirs at this "
        "service (dashboard, admin) is ended, and so is anything issued on top of them (live-feed tickets).",
        tags=["auth"],
        request=None,
        responses={204: OpenApiResponse(description="No token or session of this user works any more.")},
    )
    def post(self, request: Request, format: str | None = None) -> Response:
        response = super().post(request, format)  # knox: the tokens, and Django's user_logged_out signal
        log_out_everywhere(request.user)
        return response


def revoke_tokens(user: AbstractBaseUser) -> int:
    """Delete every API token of ``user``; how many there were."""
    deleted, _ = AuthToken.objects.filter(user=user).delete()
    return deleted


def end_sessions(user: AbstractBaseUser) -> int:
    """End every stored browser session of ``user`` (database sessions); how many there were.

    Sessions are not indexed by user, so each live one is decoded: a rare operation (logout
    everywhere) over as many sessions as there are logged-in browsers."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    model = store.get_model_class()  # the database engines (db, cached_db) have one
    theirs = [
        session.session_key
        for session in model.objects.filter(expire_date__gt=timezone.now()).iterator()
        if str(session.get_decoded().get(SESSION_KEY)) == str(user.pk)
    ]
    for key in theirs:
        store(session_key=key).delete()  # through the store: a cached_db cache forgets it too
    return len(theirs)


def log_out_everywhere(user: AbstractBaseUser) -> None:
    """End every credential of ``user`` at this service: tokens, browser sessions, and (through
    ``credentials_revoked``) what the service issued on top of them."""
    revoke_tokens(user)
    end_sessions(user)
    credentials_revoked.send(sender=type(user), user=user)


def revoke_tokens_on_password_change(
    sender: type, instance: AbstractBaseUser, created: bool = False, **_kwargs: Any
) -> None:
    """``post_save`` of the user model: a new password (``set_password`` then ``save``) ends every token.

    ``_password`` holds the new raw password from ``set_password`` until the save
    that stores it (Django clears it after; a hash upgrade at login clears it
    before saving, so it revokes nothing). Sessions end by Django's own rule
    (the session hash is derived from the password hash)."""
    if not created and getattr(instance, "_password", None) is not None:
        revoke_tokens(instance)
        credentials_revoked.send(sender=sender, user=instance)


obtain_auth_token = TokenLoginView.as_view()
logout = LogoutView.as_view()
logout_all = LogoutAllView.as_view()
