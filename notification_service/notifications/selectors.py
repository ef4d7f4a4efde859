"""Reads: a user's audience, its notifications, and the live feed after a position."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from notifications.models import Notification, Recipient


def audience_of(user: AbstractBaseUser | AnonymousUser) -> str | None:
    """The one audience ``user`` reads for, or None (anonymous, or not a notification recipient)."""
    if not user.is_authenticated:
        return None
    return Recipient.objects.filter(user_id=user.pk).values_list("audience", flat=True).first()


def notifications_for(*, audience: str) -> QuerySet[Notification]:
    """``audience``'s notifications, newest fact first.

    Ordered by when the reported fact happened, not by arrival: a request's
    decision may be consumed before the request itself (they travel on
    different topics), and must still list above it.
    """
    return Notification.objects.filter(audience=audience).order_by("-occurred_at", "-feed_seq")


def unread_count(*, audience: str) -> int:
    return Notification.objects.filter(audience=audience, read_at__isnull=True).count()


def feed_after(*, audience: str, after_seq: int, limit: int = 100) -> list[Notification]:
    """``audience``'s notifications created or changed after feed position ``after_seq``, oldest first."""
    return list(Notification.objects.filter(audience=audience, feed_seq__gt=after_seq).order_by("feed_seq")[:limit])


def latest_feed_seq(*, audience: str) -> int:
    """The feed position a new live-feed client starts from (0 when the audience has nothing yet)."""
    return (
        Notification.objects.filter(audience=audience).order_by("-feed_seq").values_list("feed_seq", flat=True).first()
        or 0
    )


def latest_feed_seq_overall() -> int:
    """The newest feed position of any audience (where the live-feed poller starts)."""
    return Notification.objects.order_by("-feed_seq").values_list("feed_seq", flat=True).first() or 0


def feed_after_all(*, after_seq: int, limit: int) -> list[Notification]:
    """Every audience's notifications created or changed after ``after_seq``, oldest first."""
    return list(Notification.objects.filter(feed_seq__gt=after_seq).order_by("feed_seq")[:limit])
