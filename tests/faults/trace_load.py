"""The traceability load for the fault tests: what the bank and the hospitals do once a request is approved.

Beside the steady load (``steady_load.py``), three threads walk each request of the scenario through the rest
of its life over the REST APIs, as the staff would:

* the bank dispatches every request it approved (bank API), once: the DINs its answer lists are the bags;
* the hospital scans those DINs in once the request shows DISPATCHED there (hospital API);
* each received unit, once it has been held ``HOLD_SECONDS`` at the hospital, gets its fate there, in turn:
  transfused, wasted (damaged), returned within the 30 minutes (the bank quarantines it for inspection),
  returned too late (the bank wastes it).

What to do next is read from the databases, as the other fault checks read them; every action is an API call,
and every call must succeed (the services' web processes stay up in these scenarios). The hold keeps some
units at the hospital at any time, so a worker killed mid-load always has fates recorded while it is dead.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial

from api_client import ApiClient
from invariants import query
from stack import Stack
from steady_load import threads_running

from shared_events.demo import HOSPITALS
from shared_events.testing import wait_for
from shared_events.topics import UNIT_FATE, topic_name

HOLD_SECONDS = 2.0  # a received unit waits this long at the hospital before its fate
PASS_SECONDS = 0.2  # each thread looks for work this often


def _ago(minutes: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


# (action, body for the n-th unit, the fate the hospital records, the unit's status at the bank then)
PLAN: tuple[tuple[str, Callable[[int], dict], str, str], ...] = (
    (
        "transfuse",
        lambda n: {"patient_reference": f"FAULT-MRN-{n}", "started_at": datetime.now(UTC).isoformat()},
        "TRANSFUSED",
        "TRANSFUSED",
    ),
    ("discard", lambda n: {"reason": "DAMAGED"}, "WASTED", "WASTED"),
    ("return", lambda n: {"left_storage_at": _ago(20), "cold_chain_intact": True}, "RETURNED", "QUARANTINED"),
    ("return", lambda n: {"left_storage_at": _ago(50), "cold_chain_intact": True}, "RETURNED", "WASTED"),
)


class TraceLoad:
    """``with trace.running():`` dispatches, receives and gives fates to the requests ``requests()`` names."""

    def __init__(self, stack: Stack, requests: Callable[[], list[str]]) -> None:
        self.stack = stack
        self.requests = requests
        self.bank = ApiClient.login(stack.url("bloodbank"), "bank_admin")
        self.hospitals = {str(h.id): ApiClient.login(stack.url("hospital"), h.username) for h in HOSPITALS}
        self.dispatched: dict[str, list[str]] = {}  # request id -> the DINs the bank's dispatch listed
        self.received: set[str] = set()
        self.fates: dict[str, tuple[str, str, float]] = {}  # DIN -> (fate, bank status expected, monotonic time)
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._numbers = itertools.count()

    # -- what the threads do ------------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        approved = query(
            self.stack,
            "bloodbank",
            "SELECT r.request_id::text FROM allocation_bankrequest r WHERE r.request_id::text = ANY(%s) "
            "AND r.status IN ('APPROVED', 'PARTIALLY_APPROVED') AND NOT EXISTS "
            "(SELECT 1 FROM traceability_dispatch d WHERE d.request_id = r.request_id) ORDER BY r.decided_at",
            [self.requests()],
        )
        for (request_id,) in approved:
            answer = self.bank.post(f"/api/v1/requests/{request_id}/dispatch/", {"courier": "fault bike"})
            with self._lock:
                if answer.status == 201:
                    self.dispatched[request_id] = [unit["din"] for unit in answer.body["units"]]
                else:
                    self.failures.append(f"dispatch of {request_id}: {answer.status} {answer.body}")

    def _receive(self) -> None:
        with self._lock:
            waiting = [request_id for request_id in self.dispatched if request_id not in self.received]
        arrived = query(
            self.stack,
            "hospital",
            "SELECT id::text, hospital_id::text FROM blood_requests_bloodrequest "
            "WHERE status = 'DISPATCHED' AND id::text = ANY(%s) ORDER BY dispatched_at",
            [waiting],
        )
        for request_id, hospital_id in arrived:
            path = f"/api/v1/blood-requests/{request_id}/receive/"
            answer = self.hospitals[hospital_id].post(path, {"dins": self.dispatched[request_id]})
            with self._lock:
                if answer.status == 200:
                    self.received.add(request_id)
                else:
                    self.failures.append(f"receipt of {request_id}: {answer.status} {answer.body}")

    def _record_fates(self) -> None:
        with self._lock:
            received = list(self.received)
        held = query(
            self.stack,
            "hospital",
            "SELECT id::text, din, hospital_id::text FROM local_inventory_localunit WHERE status = 'AVAILABLE' "
            "AND source_request_id::text = ANY(%s) AND received_at <= now() - make_interval(secs => %s) "
            "ORDER BY received_at, din",
            [received, HOLD_SECONDS],
        )
        for unit_id, din, hospital_id in held:
            number = next(self._numbers)
            action, body, fate, bank_status = PLAN[number % len(PLAN)]
            path = f"/api/v1/inventory/units/{unit_id}/{action}/"
            answer = self.hospitals[hospital_id].post(path, body(number))
            with self._lock:
                if answer.status == 200:
                    self.fates[din] = (fate, bank_status, time.monotonic())
                else:
                    self.failures.append(f"{action} of {din}: {answer.status} {answer.body}")

    def _loop(self, step: Callable[[], None], stop: threading.Event) -> None:
        while not stop.wait(PASS_SECONDS):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - recorded, and the scenario fails on it
                with self._lock:
                    self.failures.append(f"{step.__name__}: {exc!r}")

    @contextmanager
    def running(self) -> Iterator[TraceLoad]:
        with threads_running(
            [partial(self._loop, step) for step in (self._dispatch, self._receive, self._record_fates)],
            "a trace thread",
        ):
            yield self
        assert not self.failures, f"{len(self.failures)} trace call(s) failed, first: {self.failures[:3]}"

    # -- what the scenario asks ---------------------------------------------------------------------------------
    def holding(self) -> int:
        """How many units of the scenario the hospitals hold now (received, no fate yet)."""
        return query(
            self.stack,
            "hospital",
            "SELECT count(*) FROM local_inventory_localunit WHERE status IN ('AVAILABLE', 'QUARANTINED') "
            "AND source_request_id::text = ANY(%s)",
            [self.requests()],
        )[0][0]

    def fated_since(self, moment: float) -> list[str]:
        """The DINs whose fate the hospital accepted after ``moment`` (``time.monotonic()``)."""
        return self.fated_between(moment, float("inf"))

    def fated_between(self, start: float, end: float) -> list[str]:
        with self._lock:
            return [din for din, (_, _, at) in self.fates.items() if start < at <= end]

    def progress(self) -> str:
        ids, held = self.requests(), self.holding()
        with self._lock:
            return (
                f"{len(ids)} requests, {len(self.dispatched)} dispatched, {len(self.received)} received, "
                f"{len(self.fates)} fates, {held} units still held"
            )

    def wait_done(self, *, timeout: float) -> None:
        """Wait until every request of the scenario was dispatched and received, and each unit has its fate."""
        wait_for(
            self._done,
            timeout=timeout,
            interval=PASS_SECONDS,
            message=lambda: f"every request traced (so far: {self.progress()})",
        )

    def _done(self) -> bool:
        ids = self.requests()
        with self._lock:
            traced = set(ids) <= self.received
        return traced and self.holding() == 0

    def plan_problems(self) -> list[str]:
        """Each unit's status at the bank is what its fate makes it (a return: in time → QUARANTINED, else WASTED)."""
        with self._lock:
            expected = {din: bank_status for din, (_, bank_status, _) in self.fates.items()}
        sql = "SELECT din, status FROM inventory_unit WHERE din = ANY(%s)"
        found = dict(query(self.stack, "bloodbank", sql, [list(expected)]))
        return [
            f"{din}: {found.get(din)} at the bank, {status} expected"
            for din, status in expected.items()
            if found.get(din) != status
        ]

    def _delivery_waits(self, written: dict[str, datetime], *, handled_by: str) -> list[float]:
        """Seconds from each event's outbox row (``written``: id -> created_at) to its inbox row at ``handled_by``."""
        return [
            (handled - written[event_id]).total_seconds()
            for event_id, handled in query(
                self.stack,
                handled_by,
                "SELECT event_id::text, processed_at FROM shared_events_inboxevent WHERE event_id::text = ANY(%s)",
                [list(written)],
            )
        ]

    def figures(self) -> dict[str, float]:
        """Counts (with the dispatches the hospital applied before the approval: the approval then kept without a
        status change), and the longest time a dispatch took to reach the hospital and a fate to reach the bank."""
        with self._lock:
            fates = Counter(fate for fate, _, _ in self.fates.values())
            dins = list(self.fates)
            dispatched = list(self.dispatched)
        sent = dict(
            query(
                self.stack,
                "bloodbank",
                "SELECT d.event_id::text, o.created_at FROM traceability_dispatch d JOIN shared_events_outboxevent o "
                "ON o.event_id = d.event_id WHERE d.request_id::text = ANY(%s)",
                [dispatched],
            )
        )
        dispatch_waits = self._delivery_waits(sent, handled_by="hospital")
        recorded = dict(
            query(
                self.stack,
                "hospital",
                "SELECT event_id::text, created_at FROM shared_events_outboxevent WHERE topic = %s AND key = ANY(%s)",
                [topic_name(UNIT_FATE), dins],
            )
        )
        fate_waits = self._delivery_waits(recorded, handled_by="bloodbank")
        ((overtaken,),) = query(
            self.stack,
            "hospital",
            "SELECT count(*) FROM blood_requests_bloodrequest r WHERE r.id::text = ANY(%s) AND NOT EXISTS "
            "(SELECT 1 FROM blood_requests_statuschange s WHERE s.request_id = r.id AND s.status = ANY(%s))",
            [dispatched, ["APPROVED", "PARTIALLY_APPROVED"]],
        )
        return {
            "dispatched": len(dispatched),
            "dispatch before the approval at the hospital": overtaken,
            **{fate.lower(): count for fate, count in sorted(fates.items())},
            "longest dispatch wait (s)": round(max(dispatch_waits, default=0.0), 1),
            "longest fate wait (s)": round(max(fate_waits, default=0.0), 1),
        }
