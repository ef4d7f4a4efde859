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

New notifications come from the process's one database poller
(``notifications.live_feed``, every ``NOTIFICATION_STREAM_POLL_SECONDS``); an
open stream holds no database connection. The stream sends a heartbeat
comment after ``NOTIFICATION_STREAM_HEARTBEAT_SECONDS`` of silence so proxies
keep the connection, and ends after ``NOTIFICATION_STREAM_MAX_SECONDS``; the
client reconnects after ``retry`` milliseconds, resuming from its last id.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from rest_framework.authtoken.models import Token
from rest_framework.utils.encoders import JSONEncoder

from notifications import selectors
from notifications.api.serializers import NotificationSerializer
from notifications.live_feed import FeedHub, hub
from notifications.models import Notification

CATCH_UP_BATCH = 200


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


async def notification_stream(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return JsonResponse({"detail": f'Method "{request.method}" not allowed.'}, status=405, headers={"Allow": "GET"})
    status, audience = await sync_to_async(_authorize)(request)
    if status == 401:
        return JsonResponse(
            {"detail": "Authentication credentials were not provided or are invalid."},
            status=401,
            headers={"WWW-Authenticate": "Token"},
        )
    if status == 403 or audience is None:
        return JsonResponse({"detail": "This user has no notification audience."}, status=403)
    resume_from = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id")
    if resume_from is not None and not resume_from.strip().isdigit():
        return JsonResponse({"last_event_id": ["Must be a non-negative integer (a notification's seq)."]}, status=400)

    feed = hub()
    if resume_from is None:
        after_seq = await feed.read(selectors.latest_feed_seq, audience=audience)
    else:
        after_seq = int(resume_from.strip())
    response = StreamingHttpResponse(
        _events(feed, audience, after_seq), content_type="text/event-stream; charset=utf-8"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
    origin = request.headers.get("Origin")
    if origin and origin in getattr(settings, "NOTIFICATION_STREAM_CORS_ORIGINS", ()):
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Credentials"] = "true"
        response["Vary"] = "Origin"
    return response


def _authorize(request: HttpRequest) -> tuple[int, str | None]:
    """(200, audience), (401, None) or (403, None); leaves no database connection open behind it."""
    try:
        user = _authenticate(request)
        if user is None:
            return 401, None
        audience = selectors.audience_of(user)
        return (200, audience) if audience else (403, None)
    finally:
        # This request's thread would otherwise keep its connection for the whole stream.
        connections.close_all()


def _authenticate(request: HttpRequest) -> AbstractBaseUser | None:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() == "token" and key.strip():
        return _token_user(key.strip())
    if header:
        return None  # a malformed or foreign scheme is not silently replaced by the session
    if request.GET.get("token"):
        return _token_user(request.GET["token"])
    user = request.user
    return user if user.is_authenticated and user.is_active else None


def _token_user(key: str) -> AbstractBaseUser | None:
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return None
    return token.user


def _frame(notification: Notification) -> str:
    data = json.dumps(NotificationSerializer(notification).data, cls=JSONEncoder, separators=(",", ":"))
    return f"id: {notification.feed_seq}\nevent: notification\ndata: {data}\n\n"


async def _events(feed: FeedHub, audience: str, after_seq: int) -> AsyncIterator[str]:
    heartbeat = _setting("NOTIFICATION_STREAM_HEARTBEAT_SECONDS", 15.0)
    lifetime = _setting("NOTIFICATION_STREAM_MAX_SECONDS", 300.0)
    retry_ms = int(_setting("NOTIFICATION_STREAM_RETRY_MS", 3000))
    ends_at = time.monotonic() + lifetime
    subscription = feed.subscribe(audience)  # before the catch-up: see notifications.live_feed
    try:
        yield f"retry: {retry_ms}\n: connected, after {after_seq}\n\n"
        while True:  # catch up from the database on what this client has not seen
            missed = await feed.read(selectors.feed_after, audience=audience, after_seq=after_seq, limit=CATCH_UP_BATCH)
            for notification in missed:
                yield _frame(notification)
                after_seq = notification.feed_seq
            if len(missed) < CATCH_UP_BATCH:
                break
        while not subscription.overflowed:
            remaining = ends_at - time.monotonic()
            if remaining <= 0:
                break
            try:
                notification = await asyncio.wait_for(subscription.queue.get(), timeout=min(heartbeat, remaining))
            except TimeoutError:
                if ends_at - time.monotonic() > 0:
                    yield ": keep-alive\n\n"
                continue
            if notification.feed_seq > after_seq:  # the catch-up may have sent it already
                yield _frame(notification)
                after_seq = notification.feed_seq
        yield ": stream ends here; reconnect with Last-Event-ID\n\n"
    finally:
        feed.unsubscribe(subscription)
