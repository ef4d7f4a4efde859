"""A service's worker process: the consumer loop plus the outbox relay, and its heartbeat."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from shared_events.django import metrics
from shared_events.django.config import service_events
from shared_events.django.consumer import EventConsumer
from shared_events.django.heartbeat import Heartbeat, heartbeat_path
from shared_events.django.relay import OutboxRelay
from shared_events.django.runtime import settle_garbage_collector

log = logging.getLogger(__name__)

# The relay's loop turns at least every few seconds (a flush waits at most 15 s).
RELAY_STALLED_AFTER = 60.0


def run_worker(*, stop: threading.Event | None = None, relay: bool = True, consume: bool = True) -> None:
    """Run until SIGTERM/SIGINT (or ``stop``): commits offsets and leaves the group on the way out.

    While the consumer loop turns and the relay thread is alive, the heartbeat
    file is refreshed every few seconds (``manage.py worker_health``).
    """
    stop = stop or threading.Event()
    settle_garbage_collector()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    conf = service_events()
    threads = []
    outbox_relay = OutboxRelay(stop=stop) if relay else None
    if outbox_relay is not None:
        relay_thread = threading.Thread(target=outbox_relay.run, name="outbox-relay", daemon=True)
        relay_thread.start()
        threads.append(relay_thread)

    def problem() -> str | None:
        if outbox_relay is None:
            return None
        if not threads[0].is_alive():
            return "the outbox relay thread has stopped"
        stalled = time.monotonic() - outbox_relay.last_alive
        return f"the outbox relay has not turned for {stalled:.0f}s" if stalled > RELAY_STALLED_AFTER else None

    heartbeat = Heartbeat(heartbeat_path(), problem=problem)
    handlers = conf.handlers()
    try:
        if consume and handlers:
            EventConsumer(
                handlers=handlers,
                stop=stop,
                periodic=conf.periodic_tasks(),
                when_caught_up=conf.when_caught_up_tasks(),
                on_tick=heartbeat.beat,
            ).run()
        else:
            heartbeat.beat()
            while not stop.wait(1.0):
                heartbeat.beat()
    finally:
        stop.set()
        heartbeat.clear()
        for thread in threads:
            thread.join(timeout=15)
        metrics.mark_process_dead(os.getpid())  # its live gauges (consumer lag) leave with it
        log.info("worker stopped")
