"""Handlers of the test project: record an effect; some misbehave on purpose."""

import os

from django.db import transaction

from shared_events.envelope import Event
from tests.testapp.models import Effect


class HandlerBroke(RuntimeError):
    pass


def record_effect(event: Event) -> None:
    if event.subject == "always-fails":
        raise HandlerBroke("this handler fails on every attempt")
    if event.subject == "fails-until-fixed" and os.environ.get("HANDLER_BROKEN"):
        raise HandlerBroke("this handler fails until the cause is fixed")
    Effect.objects.create(event_id=event.id, event_type=event.type, subject=event.subject)
    if event.subject == "crash-after-effect" and os.environ.get("CRASH_AFTER_EFFECT"):
        # Dies right after the effect committed, before the offset is stored.
        transaction.on_commit(lambda: os._exit(137))


HANDLERS = {
    "hospital.blood.requested": record_effect,
    "hospital.blood.cancelled": record_effect,
}
