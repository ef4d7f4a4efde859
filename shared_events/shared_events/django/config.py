"""The ``SHARED_EVENTS`` setting, read in one place."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from shared_events.envelope import Event
from shared_events.topics import consumer_group

Handler = Callable[[Event], None]


@dataclass(frozen=True)
class ServiceEvents:
    service: str
    source: str
    handlers_path: str | None
    periodic: tuple[tuple[str, float], ...]
    when_caught_up: tuple[str, ...] = ()
    consumer_settings: Mapping[str, Any] | None = None
    relay_linger: float = 0.0
    consumer_batch_wait: float = 0.0

    @property
    def consumer_group(self) -> str:
        return consumer_group(self.service)

    def handlers(self) -> Mapping[str, Handler]:
        return import_string(self.handlers_path) if self.handlers_path else {}

    def periodic_tasks(self) -> list[tuple[Callable[[], Any], float]]:
        return [(import_string(path), interval) for path, interval in self.periodic]

    def when_caught_up_tasks(self) -> list[Callable[[], Any]]:
        return [import_string(path) for path in self.when_caught_up]


def service_events() -> ServiceEvents:
    conf = settings.SHARED_EVENTS
    return ServiceEvents(
        service=conf["SERVICE"],
        source=conf["SOURCE"],
        handlers_path=conf.get("HANDLERS"),
        periodic=tuple(tuple(item) for item in conf.get("PERIODIC", ())),
        when_caught_up=tuple(conf.get("WHEN_CAUGHT_UP", ())),
        consumer_settings=dict(conf.get("CONSUMER_SETTINGS", {})),
        relay_linger=float(conf.get("RELAY_LINGER", 0.0)),
        consumer_batch_wait=float(conf.get("CONSUMER_BATCH_WAIT", 0.0)),
    )
