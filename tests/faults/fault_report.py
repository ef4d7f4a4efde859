"""The figures of each fault scenario: requests sent, decided, lost, doubled, and the longest pause.

``with reported("name", stack, load):`` around a scenario (its load and its
``settle``) measures, for the requests the load sent during the block, once the
block ends (passed or failed):

* sent: POSTs made (accepted + refused); refused: POSTs not answered 201;
* decided: requests decided at the hospital;
* lost: accepted requests not decided at the hospital, or with no decision
  notification;
* doubled: requests decided more than once at the hospital, notified twice of
  the same thing, or holding a unit that another live allocation holds;
* max_wait_s: the longest time from a request's creation to the hospital
  applying its decision (the hospital's inbox row for the decision event);
* max_gap_s: the longest gap between two decisions applied at the hospital in a
  row, from the first request of the scenario on (the load sends 10 per second,
  so any gap over a second is a pause of the system).

Each scenario is printed as one line at the end of the run and written to
``var/test-results/faults-report.json`` (scenarios of earlier runs are kept,
the same scenario replaced).
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime

from invariants import DECIDED, query
from stack import ROOT, Stack
from steady_load import SteadyLoad

REPORT_FILE = ROOT / "var" / "test-results" / "faults-report.json"
LINES: list[str] = []  # this run's lines, printed at the end (conftest.py)


@dataclass
class Figures:
    scenario: str
    sent: int
    refused: int
    decided: int
    lost: int
    doubled: int
    max_wait_s: float
    max_gap_s: float
    seconds: float
    passed: bool
    finished_at: str
    notes: dict[str, float] = field(default_factory=dict)  # the scenario's own figures (e.g. a rebalance's time)

    def line(self) -> str:
        return (
            f"{self.scenario:<34} sent {self.sent:4}  decided {self.decided:4}  lost {self.lost}  "
            f"doubled {self.doubled}  refused {self.refused}  longest wait {self.max_wait_s:5.1f}s  "
            f"longest gap {self.max_gap_s:5.1f}s  ({self.seconds:.0f}s, {'passed' if self.passed else 'FAILED'})"
            + "".join(f"; {name}: {value}" for name, value in self.notes.items())
        )


def _decisions(stack: Stack, ids: list[str]) -> tuple[Counter[str], list[tuple[str, datetime, datetime]]]:
    """(decisions per request at the hospital, [(request, created, decision applied)] for each decision).

    A decision is a status change at the hospital, or an approval kept without one because the bank's dispatch
    overtook it (another topic); either is applied when the hospital's inbox row for its event was written.
    """
    rows = query(
        stack,
        "hospital",
        "SELECT r.id::text, r.created_at, i.processed_at FROM blood_requests_bloodrequest r "
        "JOIN blood_requests_statuschange s ON s.request_id = r.id AND s.status = ANY(%s) "
        "LEFT JOIN shared_events_inboxevent i ON i.event_id = s.event_id "
        "WHERE r.id::text = ANY(%s)",
        [list(DECIDED), ids],
    )
    decided = Counter(rid for rid, _, _ in rows)
    applied = [(rid, created, at) for rid, created, at in rows if at]
    overtaken = dict(
        query(
            stack,
            "hospital",
            "SELECT r.id::text, r.created_at FROM blood_requests_bloodrequest r WHERE r.id::text = ANY(%s) "
            "AND r.decided_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM blood_requests_statuschange s "
            "WHERE s.request_id = r.id AND s.status = ANY(%s))",
            [ids, list(DECIDED)],
        )
    )
    if overtaken:
        events = dict(
            query(
                stack,
                "bloodbank",
                "SELECT decision_event_id::text, request_id::text FROM allocation_bankrequest "
                "WHERE request_id::text = ANY(%s) AND decision_event_id IS NOT NULL",
                [list(overtaken)],
            )
        )
        for event_id, at in query(
            stack,
            "hospital",
            "SELECT event_id::text, processed_at FROM shared_events_inboxevent WHERE event_id::text = ANY(%s)",
            [list(events)],
        ):
            decided[events[event_id]] += 1
            applied.append((events[event_id], overtaken[events[event_id]], at))
    return decided, applied


def _notified_decision(stack: Stack, ids: list[str]) -> Counter[str]:
    """Decision notifications per request."""
    rows = query(
        stack,
        "notification",
        "SELECT request_id::text FROM notifications_notification WHERE request_id::text = ANY(%s) "
        "AND kind IN ('REQUEST_APPROVED', 'REQUEST_PARTIALLY_APPROVED', 'REQUEST_REJECTED')",
        [ids],
    )
    return Counter(rid for (rid,) in rows)


def _repeated_notifications(stack: Stack, ids: list[str]) -> set[str]:
    rows = query(
        stack,
        "notification",
        "SELECT request_id::text FROM notifications_notification WHERE request_id::text = ANY(%s) "
        "AND kind <> 'ESCALATION' GROUP BY request_id, audience, kind HAVING count(*) > 1",
        [ids],
    )
    return {rid for (rid,) in rows}


def _sharing_a_unit(stack: Stack, ids: list[str]) -> set[str]:
    rows = query(
        stack,
        "bloodbank",
        "SELECT a.request_id::text FROM allocation_allocation a WHERE a.released_at IS NULL "
        "AND a.request_id::text = ANY(%s) AND EXISTS (SELECT 1 FROM allocation_allocation b "
        "WHERE b.unit_id = a.unit_id AND b.released_at IS NULL AND b.id <> a.id)",
        [ids],
    )
    return {rid for (rid,) in rows}


def _longest_gap(applied: list[tuple[str, datetime, datetime]]) -> float:
    """The longest time without a decision applied, from the first request's creation to the last decision."""
    if not applied:
        return 0.0
    points = [min(at for _, at, _ in applied), *sorted(done for _, _, done in applied)]
    return max((b - a).total_seconds() for a, b in itertools.pairwise(points))


def measure(
    stack: Stack, scenario: str, ids: list[str], *, refused: int, seconds: float, passed: bool, notes: dict[str, float]
) -> Figures:
    decisions, applied = _decisions(stack, ids)
    notified = _notified_decision(stack, ids)
    doubled = {r for r, n in decisions.items() if n > 1} | {r for r, n in notified.items() if n > 1}
    doubled |= _repeated_notifications(stack, ids) | _sharing_a_unit(stack, ids)
    return Figures(
        scenario=scenario,
        sent=len(ids) + refused,
        refused=refused,
        decided=sum(1 for r in ids if decisions[r]),
        lost=sum(1 for r in ids if not decisions[r] or not notified[r]),
        doubled=len(doubled),
        max_wait_s=round(max(((done - at).total_seconds() for _, at, done in applied), default=0.0), 2),
        max_gap_s=round(_longest_gap(applied), 2),
        seconds=round(seconds, 1),
        passed=passed,
        finished_at=datetime.now().astimezone().isoformat(timespec="seconds"),
        notes=notes,
    )


def record(figures: Figures) -> None:
    LINES.append(figures.line())
    print(figures.line())  # shown with -s, and at the end of the run
    REPORT_FILE.parent.mkdir(parents=True, exist_ok=True)
    try:
        kept = json.loads(REPORT_FILE.read_text())
    except (OSError, ValueError):
        kept = {}
    kept[figures.scenario] = asdict(figures)
    REPORT_FILE.write_text(json.dumps(kept, indent=2) + "\n")


@contextmanager
def reported(scenario: str, stack: Stack, load: SteadyLoad) -> Iterator[dict[str, float]]:
    """Measure and record the scenario's figures when the block ends, whether it passed or not.

    The block may add figures of its own to the dict it gets (name -> value).
    """
    first, refused_before, started = load.count, len(load.failures), time.monotonic()
    passed = False
    notes: dict[str, float] = {}
    try:
        yield notes
        passed = True
    finally:
        figures = measure(
            stack,
            scenario,
            load.ids()[first:],
            refused=len(load.failures) - refused_before,
            seconds=time.monotonic() - started,
            passed=passed,
            notes=notes,
        )
        record(figures)
