"""``Idempotency-Key`` for POSTs: a retry returns the first response and creates nothing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from hospitals.models import Hospital

from blood_requests.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


class IdempotencyKeyReused(Exception):
    """The key was used before with a different body (the API answers 422)."""


def fingerprint(body: Any) -> str:
    """A stable hash of a request body: same JSON content, same hash, whatever the key order."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(canonical.encode()).hexdigest()


def run_once(
    *,
    hospital: Hospital,
    user: AbstractBaseUser,
    key: str,
    body: Any,
    action: Callable[[], tuple[int, Any]],
) -> tuple[int, Any]:
    """Run ``action`` once per (hospital, user, key) and return its ``(status, body)`` every time.

    The key is claimed by inserting its row first, in the same transaction as the action:
    a concurrent retry waits on the unique index and then sees the stored response. An
    action that raises (a 400) rolls the claim back, so nothing is remembered for it.
    """
    digest = fingerprint(body)
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    hospital=hospital, user=user, key=key, fingerprint=digest, response_status=0
                )
        except IntegrityError:
            previous = IdempotencyRecord.objects.get(hospital=hospital, user=user, key=key)
            if previous.fingerprint != digest:
                raise IdempotencyKeyReused(key) from None
            return previous.response_status, previous.response_body
        status, response_body = action()
        # Stored as the client saw it (plain JSON types), so a replay is byte-identical.
        record.response_status = status
        record.response_body = json.loads(json.dumps(response_body, cls=DjangoJSONEncoder))
        record.save(update_fields=["response_status", "response_body"])
    return status, response_body
