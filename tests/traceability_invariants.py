"""The traceability invariants (transfusion.md sections 1-3) across the three databases, for the cross-service
tests (``test_traceability.py``) and the fault scenarios (``faults/test_faults.py``).

* ``invariant_problems(stack)``, over every dispatch of the system: every dispatched unit is still held by its
  hospital (or on its way) and ISSUED at the bank with no fate, or has exactly the one fate the hospital
  recorded; no unit a hospital holds is AVAILABLE at the bank; nothing is held that was never dispatched.
* ``exactly_once_problems(stack, request_ids)``, for those requests: nothing lost and nothing doubled on the
  way, each step compared with the step before it in the other service: one dispatch per request, applied
  once at the hospital (the bank's event); the receipt at the bank once the hospital scanned the bags in; each
  fate the hospital recorded published once and stored once at the bank, from that event, with the same
  fields and the unit status it implies; one "dispatched" and one "received" notification per request.

Both return what is wrong (empty: all is well); ``assert_within`` waits until a check comes back empty.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import closing
from typing import Any

import psycopg2

from shared_events.demo import BANK_AUDIENCE
from shared_events.testing import wait_for
from shared_events.topics import UNIT_FATE, topic_name

HELD = ("AVAILABLE", "QUARANTINED")  # a hospital's local statuses of a unit it still holds
FATES = ("TRANSFUSED", "WASTED", "RETURNED")
# The bank's unit status for a fate (a return: the bank's own decision, QUARANTINED or WASTED).
BANK_STATUS = {"TRANSFUSED": "TRANSFUSED", "WASTED": "WASTED"}
FATE_STEPS = ("TRANSFUSED", "WASTED", "RETURNED", "QUARANTINED")  # a return adds its decision's step


def _query(stack, service: str, sql: str, params: Any = ()) -> list[tuple]:
    url = stack.database_urls[service]
    with closing(psycopg2.connect(url, application_name="traceability-checks")) as conn, conn.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def invariant_problems(stack) -> list[str]:
    """What breaks the traceability invariants now (empty: they hold), over every request of the system."""
    dispatched = _query(
        stack,
        "bloodbank",
        "SELECT du.unit_id::text, d.request_id::text, u.din, u.status FROM traceability_dispatch_units du "
        "JOIN traceability_dispatch d ON d.id = du.dispatch_id JOIN inventory_unit u ON u.id = du.unit_id",
    )
    fates: dict[tuple[str, str], list[str]] = {}
    for unit_id, request_id, fate in _query(
        stack, "bloodbank", "SELECT unit_id::text, request_id::text, fate FROM traceability_unitfate"
    ):
        fates.setdefault((unit_id, request_id), []).append(fate)
    local = {
        (unit_id, request_id): status
        for unit_id, request_id, status in _query(
            stack,
            "hospital",
            "SELECT bank_unit_id::text, source_request_id::text, status FROM local_inventory_localunit",
        )
    }
    problems = []
    for unit_id, request_id, din, bank_status in dispatched:
        here, there = local.get((unit_id, request_id)), fates.get((unit_id, request_id), [])
        if here is None or here in HELD:  # on its way, or held by the hospital
            if there or bank_status != "ISSUED":
                problems.append(
                    f"{din}: held by its hospital ({here or 'in transit'}) but {bank_status}, fates {there}"
                )
        elif there != [here]:
            problems.append(f"{din}: {here} at the hospital, fates at the bank {there}")
    sent = {(unit_id, request_id) for unit_id, request_id, _, _ in dispatched}
    problems += [
        f"unit {unit} of request {request} held but never dispatched"
        for unit, request in local
        if (unit, request) not in sent
    ]
    return problems


def exactly_once_problems(stack, request_ids: list[str]) -> list[str]:
    """Nothing lost or doubled between the bank and the hospitals for ``request_ids`` (see the module)."""
    found: list[str] = []

    def report(what: str, items) -> None:
        if items:
            found.append(f"{what}: {len(items)}, e.g. {sorted(map(str, items))[:3]}")

    ids = list(request_ids)
    # -- dispatch: once at the bank, applied once at the hospital ----------------------------------------------
    dispatches: dict[str, list[tuple[str, list[str]]]] = defaultdict(list)
    for request_id, event_id, dins in _query(
        stack,
        "bloodbank",
        "SELECT d.request_id::text, d.event_id::text, array_agg(u.din ORDER BY u.din) FROM traceability_dispatch d "
        "JOIN traceability_dispatch_units du ON du.dispatch_id = d.id JOIN inventory_unit u ON u.id = du.unit_id "
        "WHERE d.request_id::text = ANY(%s) GROUP BY d.id",
        [ids],
    ):
        dispatches[request_id].append((event_id, dins))
    report("requests dispatched more than once", [r for r, d in dispatches.items() if len(d) > 1])
    hospital = {
        request_id: (sorted(unit["din"] for unit in units), received)
        for request_id, units, received in _query(
            stack,
            "hospital",
            "SELECT id::text, dispatched_units, received_at IS NOT NULL FROM blood_requests_bloodrequest "
            "WHERE id::text = ANY(%s)",
            [ids],
        )
    }
    once = {r: d[0] for r, d in dispatches.items() if len(d) == 1}
    report(
        "dispatches whose units the hospital does not show",
        [r for r, (_, dins) in once.items() if hospital.get(r, ([], False))[0] != dins],
    )
    applied: dict[str, list[str]] = defaultdict(list)
    dispatch_events = [event_id for event_id, _ in once.values()]
    for request_id, event_id in _query(
        stack,
        "hospital",
        "SELECT request_id::text, event_id::text FROM blood_requests_statuschange "
        "WHERE request_id::text = ANY(%s) AND (status = 'DISPATCHED' OR event_id::text = ANY(%s))",
        [ids, dispatch_events],
    ):
        applied[request_id].append(event_id)
    report(
        "dispatches not applied once at the hospital, from the bank's event",
        [r for r, (event_id, _) in once.items() if applied.get(r) != [event_id]],
    )
    report("requests DISPATCHED at the hospital that the bank never dispatched", [r for r in applied if r not in once])

    # -- receipt: scanned in at the hospital, recorded once at the bank ----------------------------------------
    bank_received = dict(
        _query(
            stack,
            "bloodbank",
            "SELECT request_id::text, received_at IS NOT NULL FROM traceability_dispatch "
            "WHERE request_id::text = ANY(%s)",
            [ids],
        )
    )
    report(
        "receipts the bank does not know of",
        [r for r, (_, received) in hospital.items() if received and not bank_received.get(r)],
    )
    report(
        "receipts at the bank the hospital never made",
        [r for r, received in bank_received.items() if received and not hospital.get(r, ([], False))[1]],
    )
    steps: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for din, request_id, step, count in _query(
        stack,
        "bloodbank",
        "SELECT u.din, c.request_id::text, c.step, count(*) FROM inventory_unitstatuschange c "
        "JOIN inventory_unit u ON u.id = c.unit_id WHERE c.request_id::text = ANY(%s) GROUP BY 1, 2, 3",
        [ids],
    ):
        steps[(din, request_id)][step] = count
    report(
        "units with the dispatch or the receipt twice in their trace",
        [din for (din, _), c in steps.items() if c["DISPATCHED"] > 1 or c["RECEIVED_BY_HOSPITAL"] > 1],
    )
    report(
        "received units without one RECEIVED_BY_HOSPITAL step at the bank",
        [
            din
            for r, (_, dins) in once.items()
            if hospital.get(r, ([], False))[1] and bank_received.get(r)
            for din in dins
            if steps[(din, r)]["RECEIVED_BY_HOSPITAL"] != 1
        ],
    )

    # -- fates: recorded at the hospital, published once, stored once at the bank -----------------------------
    local = _query(
        stack,
        "hospital",
        "SELECT bank_unit_id::text, source_request_id::text, din, status, patient_reference, waste_reason "
        "FROM local_inventory_localunit WHERE source_request_id::text = ANY(%s)",
        [ids],
    )
    held_dins: dict[str, list[str]] = defaultdict(list)
    for _, request_id, din, *_ in local:
        held_dins[request_id].append(din)
    report(
        "receipts whose units at the hospital differ from the dispatch",
        [r for r, (_, dins) in once.items() if hospital.get(r, ([], False))[1] and sorted(held_dins[r]) != dins],
    )
    fated = [row for row in local if row[3] in FATES]
    published: dict[str, list[str]] = defaultdict(list)
    for din, event_id in _query(
        stack,
        "hospital",
        "SELECT key, event_id::text FROM shared_events_outboxevent WHERE topic = %s AND key = ANY(%s)",
        [topic_name(UNIT_FATE), [row[2] for row in fated]],
    ):
        published[din].append(event_id)
    fates_per_din = Counter(row[2] for row in fated)
    report("fates published more than once", [din for din, n in fates_per_din.items() if len(published[din]) > n])
    report("fates never published", [din for din, n in fates_per_din.items() if len(published[din]) < n])
    bank = {
        (unit_id, request_id): row
        for unit_id, request_id, *row in _query(
            stack,
            "bloodbank",
            "SELECT f.unit_id::text, f.request_id::text, f.fate, f.event_id::text, f.patient_reference, "
            "f.waste_reason, f.bank_decision, u.status FROM traceability_unitfate f "
            "JOIN inventory_unit u ON u.id = f.unit_id WHERE f.request_id::text = ANY(%s)",
            [ids],
        )
    }
    lost, differ, foreign, status_wrong, doubled = [], [], [], [], []
    for unit_id, request_id, din, fate, patient_reference, waste_reason in fated:
        there = bank.get((unit_id, request_id))
        if there is None:
            lost.append(din)
            continue
        bank_fate, event_id, bank_patient, bank_reason, decision, bank_status = there
        if (bank_fate, bank_patient, bank_reason) != (fate, patient_reference, waste_reason):
            differ.append(f"{din}: {fate} {patient_reference!r} {waste_reason!r} here, {there}")
        if event_id not in published[din]:
            foreign.append(din)
        expected = BANK_STATUS.get(fate) or (decision if decision in ("QUARANTINED", "WASTED") else "a decision")
        if bank_status != expected:
            status_wrong.append(f"{din}: {fate} here, {bank_status} at the bank (expected {expected})")
        if sum(steps[(din, request_id)][step] for step in FATE_STEPS) != (2 if fate == "RETURNED" else 1):
            doubled.append(din)
    report("fates recorded at the hospital that never reached the bank", lost)
    report("fates stored at the bank with other fields", differ)
    report("fates stored at the bank from another event than the hospital's", foreign)
    report("units whose bank status does not follow from their fate", status_wrong)
    report("units whose fate is in their trace other than once", doubled)
    recorded = {(row[0], row[1]) for row in fated}
    report(
        "fates at the bank the hospital never recorded",
        [f"unit {unit}: {row[0]}" for (unit, request), row in bank.items() if (unit, request) not in recorded],
    )

    # -- notifications: one "dispatched" for the hospital, one "received" for the bank, per request ------------
    notes = Counter(
        _query(
            stack,
            "notification",
            "SELECT request_id::text, kind, audience = %s FROM notifications_notification "
            "WHERE request_id::text = ANY(%s) AND kind IN ('UNITS_DISPATCHED', 'UNITS_RECEIVED')",
            [BANK_AUDIENCE, ids],
        )
    )
    report(
        "dispatches without one UNITS_DISPATCHED notification for the hospital",
        [r for r in once if notes[(r, "UNITS_DISPATCHED", False)] != 1 or notes[(r, "UNITS_DISPATCHED", True)]],
    )
    report(
        "receipts without one UNITS_RECEIVED notification for the bank",
        [r for r, received in bank_received.items() if received and notes[(r, "UNITS_RECEIVED", True)] != 1],
    )
    return found


def assert_within(check: Callable[[], list[str]], *, timeout: float, what: str = "the invariants") -> None:
    """Wait (events are asynchronous) until ``check`` finds nothing wrong; fail with what it still finds."""
    wait_for(lambda: not check(), timeout=timeout, interval=0.2, message=lambda: f"{what}; still: {check()}")
