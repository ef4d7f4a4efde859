"""Nothing lost, nothing doubled: what every fault test checks once the system has settled.

``settle(stack, created)`` waits (with a deadline) until every check passes, then
returns a summary; on timeout it fails with what is still wrong. The checks read
the three databases and the hospital API, for every request the load created:

* at the hospital, every request is decided (none left PENDING) by exactly one
  status change (or, when the bank's dispatch overtook its approval, the
  approval kept without one), perhaps DISPATCHED and FULFILLED since, and no
  request exists that the load did not create;
* at the bank, every request has one decision with the same outcome, and the
  hospital applied that very decision event;
* the units the bank allocated to a request are the ones the hospital holds
  (a unit returned to the bank still counts); no unit is in two live
  allocations, every live allocation's unit is ALLOCATED or was dispatched for
  it (its fate is ``traceability_invariants``' business), every ALLOCATED unit
  has one, and the bank's maintained available counts match its units, as do the counts it
  last published (none left waiting for its stock flush);
* the notifications: for each request, one "created" notification for the
  hospital and one for the bank, and one for the decision, made from the
  bank's decision event;
* the hospital API lists exactly the requests each hospital made, none PENDING.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from contextlib import closing
from typing import Any

import psycopg2
import pytest
from api_client import ApiClient
from kafka_state import describe_group, under_replicated
from stack import SERVICES, Stack

from shared_events.demo import BANK_AUDIENCE, HOSPITALS

DECIDED = ("APPROVED", "PARTIALLY_APPROVED", "REJECTED")
SETTLED = (*DECIDED, "DISPATCHED", "FULFILLED")  # at the hospital: decided, then perhaps dispatched and received
DECISION_KINDS = {
    "APPROVED": "REQUEST_APPROVED",
    "PARTIALLY_APPROVED": "REQUEST_PARTIALLY_APPROVED",
    "REJECTED": "REQUEST_REJECTED",
}


def query(stack: Stack, service: str, sql: str, params: Any = ()) -> list[tuple]:
    url = stack.database_urls[service]
    with closing(psycopg2.connect(url, application_name="fault-checks")) as conn, conn.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def statuses(stack: Stack, ids: list[str]) -> Counter[str]:
    """How many of ``ids`` are in each status at the hospital."""
    rows = query(stack, "hospital", "SELECT status FROM blood_requests_bloodrequest WHERE id::text = ANY(%s)", [ids])
    return Counter(status for (status,) in rows)


def problems(stack: Stack, created: Mapping[str, str]) -> list[str]:
    """Everything wrong for the requests ``created`` (id -> hospital id); empty when all is well."""
    found: list[str] = []

    def report(what: str, ids: list) -> None:
        if ids:
            found.append(f"{what}: {len(ids)}, e.g. {sorted(map(str, ids))[:3]}")

    # -- the hospital ------------------------------------------------------------------------
    hospital = {
        str(rid): (str(hid), status, units, allocations, decided_at is not None)
        for rid, hid, status, units, allocations, decided_at in query(
            stack,
            "hospital",
            "SELECT id, hospital_id, status, units_allocated, allocations, decided_at FROM blood_requests_bloodrequest",
        )
    }
    report("created but missing at the hospital", [r for r in created if r not in hospital])
    report("at the hospital but not created by the load", [r for r in hospital if r not in created])
    report("filed under another hospital", [r for r, h in created.items() if r in hospital and hospital[r][0] != h])
    report("not decided at the hospital", [r for r in created if r in hospital and hospital[r][1] not in SETTLED])
    decisions_applied: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for rid, status, event_id in query(
        stack,
        "hospital",
        "SELECT request_id, status, event_id FROM blood_requests_statuschange WHERE status = ANY(%s)",
        [list(DECIDED)],
    ):
        decisions_applied[str(rid)].append((status, str(event_id)))
    report("decided more than once at the hospital", [r for r, events in decisions_applied.items() if len(events) > 1])

    # -- the bank ------------------------------------------------------------------------------
    bank = {
        str(rid): (status, units, str(event_id))
        for rid, status, units, event_id in query(
            stack,
            "bloodbank",
            "SELECT request_id, status, units_allocated, decision_event_id FROM allocation_bankrequest",
        )
    }
    report("created but never seen by the bank", [r for r in created if r not in bank])
    report("not decided at the bank", [r for r in created if r in bank and bank[r][0] not in DECIDED])
    both = [r for r in created if r in bank and r in hospital and hospital[r][1] in SETTLED]
    # The dispatch may overtake the approval (another topic): the hospital keeps the approval without a status
    # change of its own. Its inbox then says whether it applied the bank's decision event.
    overtaken = [r for r in both if not decisions_applied.get(r) and hospital[r][1] not in DECIDED and hospital[r][4]]
    handled = {
        str(event_id)
        for (event_id,) in query(
            stack,
            "hospital",
            "SELECT event_id FROM shared_events_inboxevent WHERE outcome = 'HANDLED' AND event_id::text = ANY(%s)",
            [[bank[r][2] for r in overtaken]],
        )
    }
    for r in overtaken:
        if bank[r][2] in handled:
            decisions_applied[r].append(("", bank[r][2]))  # an approval: its kind is compared through the units
    report(
        "outcome differs between bank and hospital",
        [r for r in both if any(status and status != bank[r][0] for status, _ in decisions_applied.get(r, []))],
    )
    report(
        "hospital applied another event than the bank's decision",
        [r for r in both if [event for _, event in decisions_applied.get(r, [])] != [bank[r][2]]],
    )
    # A unit returned to the bank ends its allocation (released, reason RETURNED): it still counts for the request.
    given: dict[str, set[str]] = defaultdict(set)
    live: dict[str, set[str]] = defaultdict(set)
    for rid, unit_id, released in query(
        stack,
        "bloodbank",
        "SELECT request_id, unit_id, released_at IS NOT NULL FROM allocation_allocation "
        "WHERE released_at IS NULL OR release_reason = 'RETURNED'",
    ):
        given[str(rid)].add(str(unit_id))
        if not released:
            live[str(rid)].add(str(unit_id))
    report("bank's allocations differ from its units_allocated", [r for r in both if len(given[r]) != bank[r][1]])
    report(
        "units at the hospital differ from the bank's allocation",
        [r for r in both if {str(a["unit_id"]) for a in hospital[r][3]} != given[r] or hospital[r][2] != bank[r][1]],
    )
    units_in_use = Counter(unit for units in live.values() for unit in units)
    report("units in two live allocations", [u for u, n in units_in_use.items() if n > 1])
    report(
        "live allocation of a unit that is neither ALLOCATED nor dispatched for it",
        query(
            stack,
            "bloodbank",
            "SELECT u.id FROM allocation_allocation a JOIN inventory_unit u ON u.id = a.unit_id "
            "WHERE a.released_at IS NULL AND u.status <> 'ALLOCATED' AND NOT EXISTS (SELECT 1 FROM "
            "traceability_dispatch d JOIN traceability_dispatch_units du ON du.dispatch_id = d.id "
            "WHERE d.request_id = a.request_id AND du.unit_id = u.id)",
        ),
    )
    report(
        "ALLOCATED unit without a live allocation",
        query(
            stack,
            "bloodbank",
            "SELECT u.id FROM inventory_unit u WHERE u.status = 'ALLOCATED' AND NOT EXISTS "
            "(SELECT 1 FROM allocation_allocation a WHERE a.unit_id = u.id AND a.released_at IS NULL)",
        ),
    )
    report(
        "stock keys whose maintained AVAILABLE count is wrong",
        query(
            stack,
            "bloodbank",
            "SELECT s.component || ' ' || s.blood_group FROM inventory_stocksnapshot s WHERE s.status_available <> "
            "(SELECT count(*) FROM inventory_unit u WHERE u.component = s.component "
            "AND u.blood_group = s.blood_group AND u.status = 'AVAILABLE')",
        ),
    )
    # A decision may leave its key's count to the stock flush (docs/events.md): once settled, every key's
    # last published count is its count, and no change waits.
    report(
        "stock keys whose last published count is not their count",
        query(
            stack,
            "bloodbank",
            "SELECT s.component || ' ' || s.blood_group FROM inventory_stocksnapshot s "
            "WHERE s.level <> '' AND (s.unpublished_since IS NOT NULL OR s.available_units <> "
            "(SELECT count(*) FROM inventory_unit u WHERE u.component = s.component "
            "AND u.blood_group = s.blood_group AND u.status = 'AVAILABLE' AND u.expires_at > now()))",
        ),
    )

    # -- the notifications ---------------------------------------------------------------------
    notes: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for rid, audience, kind, source in query(
        stack,
        "notification",
        "SELECT request_id, audience, kind, source_event_id FROM notifications_notification "
        "WHERE request_id IS NOT NULL AND kind <> 'ESCALATION'",
    ):
        notes[str(rid)].append((audience, kind, str(source)))
    kinds = {rid: Counter((audience, kind) for audience, kind, _ in n) for rid, n in notes.items()}
    report("notifications repeated", [r for r, c in kinds.items() if any(n > 1 for n in c.values())])
    audience = {rid: f"hospital:{hid}" for rid, hid in created.items()}
    report(
        "no 'created' notification for the hospital and the bank",
        [
            r
            for r in created
            if kinds.get(r, Counter())[(audience[r], "REQUEST_CREATED")] != 1
            or kinds.get(r, Counter())[(BANK_AUDIENCE, "REQUEST_CREATED")] != 1
        ],
    )
    decision_notes = {rid: [(a, k, s) for a, k, s in n if k in DECISION_KINDS.values()] for rid, n in notes.items()}
    report(
        "no single decision notification from the bank's decision event",
        [
            r
            for r in created
            if r in bank
            and bank[r][0] in DECIDED
            and decision_notes.get(r) != [(audience[r], DECISION_KINDS[bank[r][0]], bank[r][2])]
        ],
    )
    found += outbox_problems(stack)
    return found


def outbox_problems(stack: Stack) -> list[str]:
    """Every service's outbox drained, and nothing dead-lettered (no fault here makes an event invalid)."""
    found = []
    for service in SERVICES:
        ((unsent, letters),) = query(
            stack,
            service,
            "SELECT count(*) FILTER (WHERE sent_at IS NULL), count(*) FILTER (WHERE topic LIKE %s) "
            "FROM shared_events_outboxevent",
            ["%dlq.%"],
        )
        if unsent:
            found.append(f"{service}: {unsent} outbox row(s) not yet confirmed by the broker")
        if letters:
            found.append(f"{service}: {letters} dead letter(s)")
    return found


def api_problems(stack: Stack, created: Mapping[str, str]) -> list[str]:
    """Each hospital's API lists the requests it made, none of them PENDING."""
    found = []
    made = Counter(created.values())
    for hospital in HOSPITALS:
        client = ApiClient.login(stack.url("hospital"), hospital.username)
        listed = client.get("/api/v1/blood-requests/").body["count"]
        pending = client.get("/api/v1/blood-requests/?status=PENDING").body["count"]
        if listed != made[str(hospital.id)] or pending:
            found.append(f"{hospital.username}: API lists {listed} (made {made[str(hospital.id)]}), {pending} PENDING")
    return found


def kafka_diagnosis(stack: Stack) -> list[str]:
    """Each consumer group's members, assignments and committed lag, and the under-replicated partitions."""
    lines = []
    try:
        for service in SERVICES:
            lines += describe_group(stack.broker, f"{service}-service")
        lines.append(f"under-replicated: {under_replicated(stack.broker) or 'none'}")
    except Exception as exc:  # noqa: BLE001 - a diagnosis must not hide the failure it explains
        lines.append(f"(no Kafka diagnosis: {exc!r})")
    return lines


def settle(stack: Stack, created: Mapping[str, str], *, timeout: float = 120) -> Counter[str]:
    """Wait until nothing is lost or doubled for ``created``; return the count of each decision's outcome."""
    created = dict(created)
    started = reported = time.monotonic()
    while found := problems(stack, created):
        now = time.monotonic()
        if now > started + timeout:
            found += kafka_diagnosis(stack)
            pytest.fail(f"after {timeout}s, {len(created)} requests:\n  " + "\n  ".join(found))
        if now - reported >= 10:
            reported = now
            print(f"  still settling after {now - started:.0f}s: {found[0]}")
        time.sleep(0.5)
    found = api_problems(stack, created)
    assert not found, found
    outcomes = Counter(  # the bank's decisions, which the hospital applied (its status may have moved on since)
        status
        for (status,) in query(
            stack,
            "bloodbank",
            "SELECT status FROM allocation_bankrequest WHERE request_id::text = ANY(%s)",
            [list(created)],
        )
    )
    print(f"settled in {time.monotonic() - started:.1f}s: {dict(outcomes)}")  # shown with -s or on failure
    return outcomes
