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

Every ``NOTIFICATION_STREAM_REVOKE_CHECK_SECONDS`` the hub also asks, in one
query, which of its streams' ``OpenStream`` rows are gone (their user logged out
everywhere or changed password: ``stream_access.revoke_streams``) and ends those.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, close_old_connections

from notifications import selectors, stream_access
from notifications.models import Notification

log = logging.getLogger(__name__)
T = TypeVar("T")

POLL_BATCH = 500
QUEUE_LIMIT = 1000


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
        try:
            assert self._cursor is not None
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
                if len(batch) < POLL_BATCH:
                    await asyncio.sleep(poll)
        except Exception:
            log.exception("live feed poller failed; open streams end and clients reconnect")
            for subscription in self._subscriptions:
                subscription.overflowed = True
        finally:
            # No await between the loop's last check and here: a new subscriber starts a new task.
            self._task = None
            self._cursor = None


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FeedHub] = weakref.WeakKeyDictionary()


def hub() -> FeedHub:
    """The running event loop's hub."""
    loop = asyncio.get_running_loop()
    if loop not in _hubs:
        _hubs[loop] = FeedHub()
    return _hubs[loop]
