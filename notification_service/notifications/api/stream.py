"""The live feed: ``GET /api/v1/notifications/stream/`` as Server-Sent Events (served by ASGI).

Each notification created or changed for the caller's audience is sent as::

    id: <feed_seq>
    event: notification
    data: <the notification, as in the REST API>

``feed_seq`` only grows and its order is commit order (see ``FeedSequence``), so
a client that reconnects with ``Last-Event-ID`` (browsers' EventSource does
this by itself) receives exactly what it missed. A new client without one
starts at the present; ``?last_event_id=<seq>`` resumes from the ``seq`` of a
notification it already loaded from the list endpoint.

Authentication: ``Authorization: Token <key>``, the session cookie (same-origin
EventSource), or ``?token=<key>`` for EventSource clients on another origin,
which cannot set headers (the key then appears in access logs: use it over
TLS only). Origins allowed to read the stream cross-origin are listed in
``NOTIFICATION_STREAM_CORS_ORIGINS``.

The stream polls the database (``NOTIFICATION_STREAM_POLL_SECONDS``), sends a
heartbeat comment every ``NOTIFICATION_STREAM_HEARTBEAT_SECONDS`` so proxies keep
the connection, and ends after ``NOTIFICATION_STREAM_MAX_SECONDS``; the client
reconnects after ``retry`` milliseconds, resuming from its last id.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from rest_framework.authtoken.models import Token
from rest_framework.utils.encoders import JSONEncoder

from notifications import selectors
from notifications.api.serializers import NotificationSerializer

BATCH = 100


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


async def notification_stream(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return JsonResponse({"detail": f'Method "{request.method}" not allowed.'}, status=405, headers={"Allow": "GET"})
    user = await _authenticate(request)
    if user is None:
        return JsonResponse(
            {"detail": "Authentication credentials were not provided."}, status=401, headers={"WWW-Authenticate": "Token"}
        )
    audience = await sync_to_async(selectors.audience_of)(user)
    if audience is None:
        return JsonResponse({"detail": "This user has no notification audience."}, status=403)
    resume_from = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id")
    if resume_from is None:
        after_seq = await sync_to_async(selectors.latest_feed_seq)(audience=audience)
    elif resume_from.strip().isdigit():
        after_seq = int(resume_from.strip())
    else:
        return JsonResponse({"last_event_id": ["Must be a non-negative integer (a notification's seq)."]}, status=400)

    response = StreamingHttpResponse(_events(audience, after_seq), content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
    origin = request.headers.get("Origin")
    if origin and origin in getattr(settings, "NOTIFICATION_STREAM_CORS_ORIGINS", ()):
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Credentials"] = "true"
        response["Vary"] = "Origin"
    return response


async def _authenticate(request: HttpRequest) -> AbstractBaseUser | None:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() == "token" and key.strip():
        return await _token_user(key.strip())
    if header:
        return None  # a malformed or foreign scheme is not silently replaced by the session
    if request.GET.get("token"):
        return await _token_user(request.GET["token"])
    user = await request.auser()
    return user if user.is_authenticated and user.is_active else None


async def _token_user(key: str) -> AbstractBaseUser | None:
    token = await Token.objects.select_related("user").filter(key=key).afirst()
    if token is None or not token.user.is_active:
        return None
    return token.user


def _frame(notification) -> str:
    data = json.dumps(NotificationSerializer(notification).data, cls=JSONEncoder, separators=(",", ":"))
    return f"id: {notification.feed_seq}\nevent: notification\ndata: {data}\n\n"


async def _events(audience: str, after_seq: int) -> AsyncIterator[str]:
    poll = _setting("NOTIFICATION_STREAM_POLL_SECONDS", 0.5)
    heartbeat = _setting("NOTIFICATION_STREAM_HEARTBEAT_SECONDS", 15.0)
    lifetime = _setting("NOTIFICATION_STREAM_MAX_SECONDS", 300.0)
    retry_ms = int(_setting("NOTIFICATION_STREAM_RETRY_MS", 3000))
    fetch = sync_to_async(selectors.feed_after)
    started = last_sent = time.monotonic()
    yield f"retry: {retry_ms}\n: connected, after {after_seq}\n\n"
    while True:
        batch = await fetch(audience=audience, after_seq=after_seq, limit=BATCH)
        for notification in batch:
            yield _frame(notification)
            after_seq = notification.feed_seq
        now = time.monotonic()
        if batch:
            last_sent = now
        if now - started >= lifetime:
            yield ": stream lifetime reached; reconnect with Last-Event-ID\n\n"
            return
        if now - last_sent >= heartbeat:
            yield ": keep-alive\n\n"
            last_sent = now
        if len(batch) < BATCH:
            await asyncio.sleep(poll)
