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
EventSource), or ``?ticket=<ticket>`` for EventSource clients on another origin,
which cannot set headers: a single-use ticket good for 30 seconds from
``POST /api/v1/notifications/stream-ticket/`` (``notifications.stream_access``),
never the long-lived token (``?token=`` is refused: a URL is written to access
logs and browser history). Origins allowed to read the stream cross-origin are
listed in ``NOTIFICATION_STREAM_CORS_ORIGINS``. A user has at most
``NOTIFICATION_STREAMS_PER_USER`` streams open at once (429 beyond), and a
``Last-Event-ID`` beyond the newest notification is refused (400).

New notifications come from the process's one database poller
(``notifications.live_feed``, every ``NOTIFICATION_STREAM_POLL_SECONDS``); an
open stream holds no database connection. Opening one does (its authentication
and its count among the user's streams, on a thread of its own): at most
``NOTIFICATION_STREAM_OPENINGS_AT_ONCE`` (4) streams of a process open at once,
the others wait their turn, so that a burst of reconnections (every dashboard
after a deploy) cannot take more connections than the database allows. Before
this limit, 200 streams opening together got "too many clients" from
PostgreSQL and a 500, which an EventSource does not retry. The stream sends a heartbeat
comment after ``NOTIFICATION_STREAM_HEARTBEAT_SECONDS`` of silence so proxies
keep the connection, and ends after ``NOTIFICATION_STREAM_MAX_SECONDS``; the
client reconnects after ``retry`` milliseconds, resuming from its last id.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
import weakref
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.utils.encoders import JSONEncoder

from notifications import selectors, stream_access
from notifications.api.serializers import NotificationSerializer
from notifications.live_feed import FeedHub, hub
from notifications.models import Notification
from shared_events.django.token_auth import ExpiringTokenAuthentication

CATCH_UP_BATCH = 200
MAX_SEQ_DIGITS = 18  # feed_seq is a bigint; longer is not a position at all


class Refused(Exception):
    def __init__(self, status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.response = JsonResponse(body, status=status, headers=headers)


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


_opening_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _opening_slot() -> asyncio.Semaphore:
    """The event loop's limit on streams opening at once (a semaphore belongs to one loop)."""
    loop = asyncio.get_running_loop()
    slot = _opening_slots.get(loop)
    if slot is None:
        slot = _opening_slots[loop] = asyncio.Semaphore(int(_setting("NOTIFICATION_STREAM_OPENINGS_AT_ONCE", 4)))
    return slot


async def notification_stream(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return JsonResponse({"detail": f'Method "{request.method}" not allowed.'}, status=405, headers={"Allow": "GET"})
    resume_from = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id")
    feed = hub()
    try:
        async with _opening_slot():  # each opening holds a database connection while it runs
            audience, user_id = await sync_to_async(_authorize)(request)
            after_seq = await _start_position(feed, audience, resume_from)
            stream_id = await sync_to_async(_open_stream)(user_id)
    except Refused as refused:
        return refused.response
    response = StreamingHttpResponse(
        _events(feed, audience, after_seq, stream_id), content_type="text/event-stream; charset=utf-8"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
    origin = request.headers.get("Origin")
    if origin and origin in getattr(settings, "NOTIFICATION_STREAM_CORS_ORIGINS", ()):
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Credentials"] = "true"
        response["Vary"] = "Origin"
    return response


async def _start_position(feed: FeedHub, audience: str, resume_from: str | None) -> int:
    """Where the stream starts: the present, or ``Last-Event-ID`` when it is a position the feed has reached."""
    if resume_from is None:
        return await feed.read(selectors.latest_feed_seq, audience=audience)
    value = resume_from.strip()
    if not value.isdigit() or len(value) > MAX_SEQ_DIGITS:
        raise Refused(400, {"last_event_id": ["Must be a non-negative integer (a notification's seq)."]})
    newest = await feed.read(selectors.latest_feed_seq_overall)
    if int(value) > newest:
        raise Refused(400, {"last_event_id": [f"No notification has this seq yet (the newest is {newest})."]})
    return int(value)


def _authorize(request: HttpRequest) -> tuple[str, int]:
    """(audience, user id), or ``Refused`` (401, 403); leaves no database connection open behind it."""
    try:
        user = _authenticate(request)
        if user is None:
            raise Refused(
                401,
                {"detail": "Authentication credentials were not provided or are invalid."},
                headers={"WWW-Authenticate": "Token"},
            )
        audience = selectors.audience_of(user)
        if audience is None:
            raise Refused(403, {"detail": "This user has no notification audience."})
        return audience, user.pk
    finally:
        # This request's thread would otherwise keep its connection for the whole stream.
        connections.close_all()


def _open_stream(user_id: int) -> uuid.UUID:
    try:
        stream_id = stream_access.open_stream(user_id=user_id)
    finally:
        connections.close_all()
    if stream_id is None:
        limit = getattr(settings, "NOTIFICATION_STREAMS_PER_USER", 10)
        raise Refused(429, {"detail": f"This user already has {limit} live-feed streams open."})
    return stream_id


def _authenticate(request: HttpRequest) -> AbstractBaseUser | None:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() == "token" and key.strip():
        return _token_user(key.strip())
    if header:
        return None  # a malformed or foreign scheme is not silently replaced by the session
    if "token" in request.GET:
        return None  # long-lived tokens never travel in a URL: ask for a ?ticket= instead
    if request.GET.get("ticket"):
        return stream_access.redeem_ticket(request.GET["ticket"])
    user = request.user
    return user if user.is_authenticated and user.is_active else None


def _token_user(key: str) -> AbstractBaseUser | None:
    """The user of a live knox token (expired, revoked or unknown: None)."""
    try:
        user, _token = ExpiringTokenAuthentication().authenticate_credentials(key.encode())
    except AuthenticationFailed:
        return None
    return user


def _frame(notification: Notification) -> str:
    data = json.dumps(NotificationSerializer(notification).data, cls=JSONEncoder, separators=(",", ":"))
    return f"id: {notification.feed_seq}\nevent: notification\ndata: {data}\n\n"


async def _events(feed: FeedHub, audience: str, after_seq: int, stream_id: uuid.UUID) -> AsyncIterator[str]:
    heartbeat = _setting("NOTIFICATION_STREAM_HEARTBEAT_SECONDS", 15.0)
    lifetime = _setting("NOTIFICATION_STREAM_MAX_SECONDS", 300.0)
    retry_ms = int(_setting("NOTIFICATION_STREAM_RETRY_MS", 3000))
    ends_at = time.monotonic() + lifetime
    subscription = feed.subscribe(audience, stream_id)  # before the catch-up: see notifications.live_feed
    try:
        yield f"retry: {retry_ms}\n: connected, after {after_seq}\n\n"
        while True:  # catch up from the database on what this client has not seen
            missed = await feed.read(selectors.feed_after, audience=audience, after_seq=after_seq, limit=CATCH_UP_BATCH)
            for notification in missed:
                yield _frame(notification)
                after_seq = notification.feed_seq
            if len(missed) < CATCH_UP_BATCH:
                break
        while not subscription.ended:
            remaining = ends_at - time.monotonic()
            if remaining <= 0:
                break
            try:
                notification = await asyncio.wait_for(subscription.queue.get(), timeout=min(heartbeat, remaining))
            except TimeoutError:
                if ends_at - time.monotonic() > 0:
                    yield ": keep-alive\n\n"
                continue
            if notification is None:  # revoked (Subscription.revoke)
                break
            if notification.feed_seq > after_seq:  # the catch-up may have sent it already
                yield _frame(notification)
                after_seq = notification.feed_seq
        if subscription.revoked:
            yield ": stream ends here; the credentials it was opened with were revoked\n\n"
        else:
            yield ": stream ends here; reconnect with Last-Event-ID\n\n"
    finally:
        feed.unsubscribe(subscription)
        feed.submit(stream_access.close_stream, stream_id=stream_id)  # not awaited: the client may be gone
