"""The worker's heartbeat file: written every few seconds while the worker is healthy.

An orchestrator cannot ask a worker over HTTP, so the worker touches
``WORKER_HEARTBEAT_FILE`` from its consumer loop while the relay thread is
alive too; ``manage.py worker_health`` (a container health check) says whether
the file is fresh.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)

BEAT_INTERVAL = 5.0


def heartbeat_path() -> Path:
    return Path(settings.WORKER_HEARTBEAT_FILE)


class Heartbeat:
    """``beat()`` is cheap to call often: it writes at most every ``interval`` seconds, and only when healthy.

    ``problem()`` returns why the worker is unhealthy, or None.
    """

    def __init__(
        self, path: Path, *, problem: Callable[[], str | None] = lambda: None, interval: float = BEAT_INTERVAL
    ) -> None:
        self.path = path
        self.problem = problem
        self.interval = interval
        self._next = 0.0
        self._reported: str | None = None

    def beat(self) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval
        problem = self.problem()
        if problem is not None:
            if problem != self._reported:
                log.error("worker unhealthy, heartbeat withheld: %s", problem)
            self._reported = problem
            return
        self._reported = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.write_text(f"{datetime.now(UTC).isoformat()} pid {os.getpid()}\n")
        tmp.replace(self.path)  # atomic: a reader never sees a half-written file

    def clear(self) -> None:
        """The worker stops: it is no longer healthy."""
        self.path.unlink(missing_ok=True)


def check(path: Path, max_age: float) -> tuple[bool, str]:
    """(healthy, why): the file exists and was written less than ``max_age`` seconds ago."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False, f"no heartbeat file at {path} (worker not started, stopped, or never healthy)"
    if age > max_age:
        return False, f"last heartbeat {age:.1f}s ago, older than {max_age:g}s ({path})"
    return True, f"last heartbeat {age:.1f}s ago ({path})"
