"""Steady load for the fault tests: two hospitals creating requests over REST at a fixed rate.

One thread per hospital sends on schedule (open loop: a slow answer delays
that thread's next request, then it catches up). EMERGENCY and SCHEDULED
requests are mixed, over several blood groups, 1 or 2 units each. Every POST
must be accepted (201): a hospital takes requests whatever the faults behind it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial

from api_client import ApiClient
from stack import Stack

from shared_events.demo import HOSPITALS
from shared_events.testing import wait_for

GROUPS = ("O+", "A+", "B+", "O-", "A-", "AB+")


def request_body(n: int) -> dict:
    """The ``n``-th request of a hospital: every third one SCHEDULED (all or nothing), the rest EMERGENCY."""
    body = {
        "blood_group": GROUPS[n % len(GROUPS)],
        "component": "RED_CELLS",
        "units": 1 + n % 2,
        "priority": "EMERGENCY",
        "group_confirmed": True,  # typed twice: group-specific units, as the stock is seeded per group
        "patient_reference": f"FAULT-{n}",
    }
    if n % 3 == 2:
        body |= {"priority": "SCHEDULED", "needed_by": (datetime.now(UTC) + timedelta(days=2)).isoformat()}
    return body


@contextmanager
def threads_running(targets: list[Callable[[threading.Event], None]], what: str) -> Iterator[None]:
    """Run each ``target(stop)`` in a thread for the block's duration; then stop them and check they ended."""
    stop = threading.Event()
    threads = [threading.Thread(target=target, args=(stop,), daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), f"{what} did not stop"


class SteadyLoad:
    """``with load.running():`` creates requests at ``rate`` per second in total until the block ends."""

    def __init__(self, stack: Stack, *, rate: float) -> None:
        self.clients = {h.id: ApiClient.login(stack.url("hospital"), h.username) for h in HOSPITALS}
        self.interval = len(self.clients) / rate  # seconds between two requests of one hospital
        self.created: dict[str, str] = {}  # request id -> hospital id, every request this load made
        self.sent_at: dict[str, float] = {}  # request id -> time.monotonic() when its POST was sent
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._numbers = itertools.count()

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.created)

    def ids(self) -> list[str]:
        with self._lock:
            return list(self.created)

    def sent_since(self, moment: float) -> list[str]:
        """The requests whose POST was sent after ``moment`` (``time.monotonic()``)."""
        with self._lock:
            return [request_id for request_id, sent in self.sent_at.items() if sent > moment]

    @contextmanager
    def running(self) -> Iterator[SteadyLoad]:
        with threads_running(
            [partial(self._send, hospital_id, client) for hospital_id, client in self.clients.items()], "a load thread"
        ):
            yield self
        assert not self.failures, f"{len(self.failures)} request(s) refused, first: {self.failures[:3]}"

    def wait_for_more(self, more: int, *, message: str = "") -> list[str]:
        """Wait until the load has created ``more`` requests from now; return their ids."""
        start = self.count
        timeout = 30 + 4 * more * self.interval / len(self.clients)
        wait_for(lambda: self.count >= start + more, timeout=timeout, interval=0.05, message=message or "load")
        return self.ids()[start:]

    def _send(self, hospital_id: str, client: ApiClient, stop: threading.Event) -> None:
        next_at = time.monotonic()
        while not stop.wait(max(0.0, next_at - time.monotonic())):
            next_at += self.interval
            sent = time.monotonic()
            response = client.post("/api/v1/blood-requests/", request_body(next(self._numbers)))
            with self._lock:
                if response.status == 201:
                    self.created[response.body["id"]] = str(hospital_id)
                    self.sent_at[response.body["id"]] = sent
                else:
                    self.failures.append(f"{response.status}: {response.body}")


SEED_UNITS = """
from datetime import timedelta
from django.db import transaction
from django.utils import timezone
from inventory.din import make_din
from inventory.models import Unit, UnitStatus
from inventory.services import ALL_KEYS, refresh_stock
now = timezone.now()
groups = {groups!r}
with transaction.atomic():
    Unit.objects.bulk_create(
        Unit(
            din=make_din("B9999", now.year, 500000 + n),
            component="RED_CELLS",
            product_code="E0398V00",
            blood_group=groups[n % len(groups)],
            volume_ml=280,
            collected_at=now - timedelta(days=1),
            expires_at=now + timedelta(days=30),
            batch="FAULTS",
            status=UnitStatus.AVAILABLE,
        )
        for n in range({count})
    )
    refresh_stock(keys=ALL_KEYS, recount=True)
"""


def seed_units(stack: Stack, *, per_group: int) -> None:
    """Fresh red cells in the bank, ``per_group`` of each group the load asks for, so requests get approved."""
    code = SEED_UNITS.format(groups=list(GROUPS), count=per_group * len(GROUPS))
    result = stack.manage("bloodbank", "shell", "-c", code, check=False)
    assert result.returncode == 0, result.stderr
