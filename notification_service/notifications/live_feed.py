"""One database poller per web process for every open live-feed stream.

Without it each open stream would poll the database itself and hold a
database connection for as long as it stays open (minutes, for every open
dashboard). The hub polls once per interval for *all* audiences on a single
thread (one connection per process) and hands each new or changed
notification to the streams of its audience.

Nothing is lost between a stream's catch-up and the hub's polls:

* ``feed_seq`` order is commit order (``FeedSequence``);
* a stream registers *before* its catch-up query, and the hub's first
  cursor query is queued on the hub's one thread before that catch-up,
  so every notification is either in the catch-up or in a later poll;
* a stream drops anything at or below the last ``feed_seq`` it sent
  (the same notification can come from both).

On PostgreSQL the hub does not wait out its interval when something was
committed: every statement that writes notifications NOTIFYs ``notifications_feed``
(a trigger, migration 0009), and the hub ``LISTEN``s on a connection of its own
(set up on its thread before its first read, so before any stream's catch-up).
A wake-up only makes the next read come sooner; what a read returns still comes
from ``feed_seq``, so a wake-up lost (the listening connection broke) costs at
most one interval, as before.

Every ``NOTIFICATION_STREAM_REVOKE_CHECK_SECONDS`` the hub also asks, in one
query, which of its streams' ``OpenStream`` rows are gone (their user logged out
everywhere or changed password: ``stream_access.revoke_streams``) and ends those.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from notifications import selectors, stream_access
from notifications.models import Notification
from shared_events.django.dedicated import dedicated_connection

log = logging.getLogger(__name__)
T = TypeVar("T")

POLL_BATCH = 500
QUEUE_LIMIT = 1000
FEED_CHANNEL = "notifications_feed"  # NOTIFYed by the trigger of migration 0009
LISTEN_RETRY_SECONDS = 5.0


def _with_connection(fn: Callable[..., T], **kwargs: Any) -> T:
    close_old_connections()  # drop a connection that broke or aged out before reusing it
    return fn(**kwargs)


class Subscription:
    """One open stream: its audience and the notifications the hub hands it, in ``feed_seq`` order."""

    def __init__(self, audience: str, stream_id: uuid.UUID | None = None) -> None:
        self.audience = audience
        self.stream_id = stream_id
        self.queue: asyncio.Queue[Notification | None] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self.overflowed = False
        """The client read too slowly; the stream ends and the client resumes from the database."""
        self.revoked = False
        """The user's credentials ended (logout everywhere, a new password): the stream ends for good."""

    @property
    def ended(self) -> bool:
        return self.overflowed or self.revoked

    def offer(self, notification: Notification) -> None:
        try:
            self.queue.put_nowait(notification)
        except asyncio.QueueFull:
            self.overflowed = True

    def revoke(self) -> None:
        self.revoked = True
        try:
            self.queue.put_nowait(None)  # wakes the stream up now, not at its next heartbeat
        except asyncio.QueueFull:
            self.overflowed = True  # the stream ends at its next look at the queue anyway


class FeedHub:
    """The poller of one event loop (one per web process under uvicorn)."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notification-feed")
        self._subscriptions: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._cursor: asyncio.Future[int] | None = None
        self._listening: asyncio.Future[Any] | None = None  # the LISTEN connection, opened on the hub's thread
        self._listener: Any = None
        self._listener_fd = -1
        self._wake = asyncio.Event()

    async def read(self, fn: Callable[..., T], **kwargs: Any) -> T:
        """Run a database read on the hub's thread (and its one connection)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(_with_connection, fn, **kwargs))

    def submit(self, fn: Callable[..., Any], **kwargs: Any) -> None:
        """Run a database write on the hub's thread without waiting for it (e.g. from a closing stream)."""
        self._executor.submit(_with_connection, fn, **kwargs)

    def subscribe(self, audience: str, stream_id: uuid.UUID | None = None) -> Subscription:
        subscription = Subscription(audience, stream_id)
        self._subscriptions.add(subscription)
        if self._task is None:
            # Queued on the hub's thread now, before the subscriber's catch-up query (see module doc).
            loop = asyncio.get_running_loop()
            self._listening = loop.run_in_executor(self._executor, _listen)
            self._cursor = loop.run_in_executor(
                self._executor, partial(_with_connection, selectors.latest_feed_seq_overall)
            )
            self._task = loop.create_task(self._poll(), name="notification-feed-hub")
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    async def _end_revoked_streams(self) -> None:
        counted = {s.stream_id: s for s in self._subscriptions if s.stream_id is not None and not s.ended}
        if not counted:
            return
        live = await self.read(stream_access.live_streams, stream_ids=set(counted))
        for stream_id, subscription in counted.items():
            if stream_id not in live:
                subscription.revoke()

    async def _poll(self) -> None:
        poll = float(getattr(settings, "NOTIFICATION_STREAM_POLL_SECONDS", 0.5))
        revoke_check = float(getattr(settings, "NOTIFICATION_STREAM_REVOKE_CHECK_SECONDS", 5.0))
        checked_at = time.monotonic()
        listen_tried_at = time.monotonic()
        try:
            assert self._cursor is not None and self._listening is not None
            self._attach(await self._listening)
            cursor = await self._cursor
            while self._subscriptions:
                if time.monotonic() - checked_at >= revoke_check:
                    checked_at = time.monotonic()
                    try:
                        await self._end_revoked_streams()
                    except DatabaseError as exc:
                        log.warning("live feed: could not check for revoked streams (%s); retrying", exc)
                try:
                    batch = await self.read(selectors.feed_after_all, after_seq=cursor, limit=POLL_BATCH)
                except DatabaseError as exc:
                    log.warning("live feed: database unavailable (%s); retrying", exc)
                    batch = []
                for notification in batch:
                    for subscription in list(self._subscriptions):
                        if subscription.audience == notification.audience:
                            subscription.offer(notification)
                    cursor = notification.feed_seq
                if self._listener is None and time.monotonic() - listen_tried_at >= LISTEN_RETRY_SECONDS:
                    listen_tried_at = time.monotonic()
                    self._attach(await asyncio.get_running_loop().run_in_executor(self._executor, _listen))
                if len(batch) < POLL_BATCH:
                    await self._wait(poll)
        except Exception:
            log.exception("live feed poller failed; open streams end and clients reconnect")
            for subscription in self._subscriptions:
                subscription.overflowed = True
        finally:
            # No await between the loop's last check and here: a new subscriber starts a new task.
            self._task = None
            self._cursor = None
            self._listening = None
            self._detach()

    async def _wait(self, seconds: float) -> None:
        """Until a commit wakes the hub or ``seconds`` pass; a wake-up during the read before comes at once."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    def _attach(self, listener: Any) -> None:
        if listener is None:
            return
        self._listener, self._listener_fd = listener, listener.fileno()
        asyncio.get_running_loop().add_reader(self._listener_fd, self._on_notify)

    def _on_notify(self) -> None:
        try:
            self._listener.poll()  # takes what arrived; the connection is this loop's alone, and idle
            self._listener.notifies.clear()
        except Exception as exc:  # noqa: BLE001 - a broken LISTEN: the poll interval takes over
            log.warning("live feed: listening connection lost (%s); polling until it is back", exc)
            self._detach()
        self._wake.set()

    def _detach(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        asyncio.get_running_loop().remove_reader(self._listener_fd)
        with contextlib.suppress(Exception):  # closing a connection that may be gone already
            listener.close()


def _listen() -> Any:
    """A connection of its own that ``LISTEN``s for committed notifications (PostgreSQL); None elsewhere or on
    failure (the hub then polls, and tries again later)."""
    if connection.vendor != "postgresql":
        return None
    try:
        listener = dedicated_connection()
        with listener.cursor() as cursor:
            cursor.execute(f"LISTEN {FEED_CHANNEL}")
    except Exception as exc:  # noqa: BLE001 - psycopg2's errors: the feed still works by polling
        log.warning("live feed: cannot listen for new notifications (%s); polling", exc)
        return None
    return listener


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FeedHub] = weakref.WeakKeyDictionary()


def hub() -> FeedHub:
    """The running event loop's hub."""
    loop = asyncio.get_running_loop()
    if loop not in _hubs:
        _hubs[loop] = FeedHub()
    return _hubs[loop]
