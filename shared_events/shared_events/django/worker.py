"""A service's worker process: the consumer loop plus the outbox relay."""

from __future__ import annotations

import logging
import signal
import threading

from shared_events.django.config import service_events
from shared_events.django.consumer import EventConsumer
from shared_events.django.relay import OutboxRelay

log = logging.getLogger(__name__)


def run_worker(*, stop: threading.Event | None = None, relay: bool = True, consume: bool = True) -> None:
    """Run until SIGTERM/SIGINT (or ``stop``): commits offsets and leaves the group on the way out."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    conf = service_events()
    threads = []
    if relay:
        relay_thread = threading.Thread(target=OutboxRelay(stop=stop).run, name="outbox-relay", daemon=True)
        relay_thread.start()
        threads.append(relay_thread)
    handlers = conf.handlers()
    try:
        if consume and handlers:
            EventConsumer(
                handlers=handlers,
                stop=stop,
                periodic=conf.periodic_tasks(),
                when_caught_up=conf.when_caught_up_tasks(),
                consumer_overrides=dict(conf.consumer_settings or {}),
            ).run()
        else:
            stop.wait()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        log.info("worker stopped")
