"""Who may open the live feed, and how many streams at once.

* ``issue_ticket`` / ``redeem_ticket``: an EventSource on another origin cannot
  send ``Authorization``, and a long-lived token in a URL ends up in access logs
  and browser history. It gets a ticket instead: random, stored only as a
  SHA-256 digest, good for ``NOTIFICATION_STREAM_TICKET_SECONDS`` (30) and for
  one stream (redeeming deletes it).
* ``open_stream`` / ``close_stream``: at most ``NOTIFICATION_STREAMS_PER_USER``
  (10) streams per user at once, counted in the database so that every web
  process sees the same count.
* ``revoke_streams``: when every credential of a user ends (logout everywhere, a
  new password: ``shared_events.django.auth.credentials_revoked``), their unused
  tickets are deleted and their open streams' rows too; each web process's feed
  hub ends a stream whose row is gone within ``NOTIFICATION_STREAM_REVOKE_CHECK_SECONDS``.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from notifications.models import OpenStream, StreamTicket


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def issue_ticket(*, user: AbstractBaseUser) -> tuple[str, datetime]:
    """A new single-use ticket for ``user`` and when it expires (expired ones are swept on the way)."""
    now = timezone.now()
    StreamTicket.objects.filter(expires_at__lte=now).delete()
    ticket = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=float(getattr(settings, "NOTIFICATION_STREAM_TICKET_SECONDS", 30)))
    StreamTicket.objects.create(digest=_digest(ticket), user=user, expires_at=expires_at)
    return ticket, expires_at


def redeem_ticket(ticket: str) -> AbstractBaseUser | None:
    """The active user the ticket was issued to, once: a second use, or an expired ticket, is None."""
    found = StreamTicket.objects.filter(digest=_digest(ticket)).select_related("user").first()
    if found is None:
        return None
    deleted, _ = StreamTicket.objects.filter(digest=found.digest).delete()
    if not deleted or found.expires_at <= timezone.now() or not found.user.is_active:
        return None  # used by a concurrent request in between, expired, or the user was deactivated
    return found.user


def open_stream(*, user_id: int) -> uuid.UUID | None:
    """Count a new stream of this user; None when the user already has the most allowed open."""
    limit = int(getattr(settings, "NOTIFICATION_STREAMS_PER_USER", 10))
    lifetime = float(getattr(settings, "NOTIFICATION_STREAM_MAX_SECONDS", 300))
    now = timezone.now()
    with transaction.atomic():
        # One user's streams open one at a time (the user's row is the lock), so the count is exact.
        list(get_user_model().objects.select_for_update().filter(pk=user_id).values_list("pk", flat=True))
        OpenStream.objects.filter(user_id=user_id, expires_at__lte=now).delete()
        if OpenStream.objects.filter(user_id=user_id).count() >= limit:
            return None
        stream = OpenStream.objects.create(
            user_id=user_id, opened_at=now, expires_at=now + timedelta(seconds=lifetime + 60)
        )
    return stream.id


def close_stream(*, stream_id: uuid.UUID) -> None:
    OpenStream.objects.filter(pk=stream_id).delete()


def live_streams(*, stream_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these streams may go on (the others were revoked)."""
    return set(OpenStream.objects.filter(pk__in=stream_ids).values_list("pk", flat=True))


def revoke_streams(*, user: AbstractBaseUser) -> None:
    """No ticket of ``user`` opens a stream any more, and their open streams end (see ``live_streams``)."""
    StreamTicket.objects.filter(user=user).delete()
    OpenStream.objects.filter(user=user).delete()


def revoke_streams_with_credentials(sender: type, user: AbstractBaseUser, **_kwargs: object) -> None:
    """Receiver of ``credentials_revoked``."""
    revoke_streams(user=user)
