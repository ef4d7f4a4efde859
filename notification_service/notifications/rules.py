"""Which notifications an event produces, for whom, and in which words. Pure: no Django.

``plan_notifications`` is the whole policy: given an event's type and typed
payload (plus what is known of the request and the hospitals), it returns the
notifications to store, one per audience. Texts are written for a nurse or a
bank technician reading them at a glance: amount, group, component first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel

from shared_events import schemas, topics
from shared_events.demo import BANK_AUDIENCE
from shared_events.enums import (
    UNKNOWN_GROUP,
    Component,
    Priority,
    RejectReason,
    RequestProtocol,
    StockCrossing,
    StockLevel,
)

INFO, WARNING, CRITICAL = "INFO", "WARNING", "CRITICAL"

COMPONENT_WORDS = {
    Component.WHOLE_BLOOD: "whole blood",
    Component.RED_CELLS: "red cells",
    Component.PLASMA: "plasma",
    Component.PLATELETS: "platelets",
    Component.CRYO: "cryoprecipitate",
}

REJECT_WORDS = {
    RejectReason.INSUFFICIENT_STOCK: "not enough units in stock",
    RejectReason.NO_COMPATIBLE_UNITS: "no compatible units in stock",
    RejectReason.INVALID_REQUEST: "the request was invalid",
    RejectReason.NEEDED_BY_PASSED: "the needed-by time had passed",
    RejectReason.CANCELLED_BEFORE_DECISION: "it was cancelled before a decision",
    RejectReason.NO_UNITS_MEETING_REQUIREMENTS: (
        "compatible units are in stock, but none meets the special requirements (irradiated, CMV-negative, "
        "antigen-negative ...)"
    ),
}

NOTIFIED_EVENT_TYPES = (
    topics.REQUESTED,
    topics.CANCELLED,
    topics.APPROVED,
    topics.REJECTED,
    topics.RELEASED,
    topics.INVENTORY_UPDATED,
    topics.LOW_STOCK,
    topics.UNITS_DISPATCHED,
    topics.UNITS_RECEIVED,
    topics.UNIT_FATE,
    topics.FATE_OVERDUE,
    topics.RECALL_ISSUED,
    topics.RECALL_ACKNOWLEDGED,
    topics.MTP_PACK_REQUESTED,
    topics.MTP_STOPPED,
)


@dataclass(frozen=True)
class RequestFacts:
    """What the original request asked for (known once ``hospital.blood.requested`` was seen)."""

    request_id: UUID
    hospital_id: UUID
    hospital_name: str
    blood_group: str  # or UNKNOWN (emergency release)
    component: str | None  # None for an MTP request
    units: int | None  # None for an MTP request
    priority: str
    protocol: str = RequestProtocol.STANDARD.value

    @property
    def is_mtp(self) -> bool:
        return self.protocol == RequestProtocol.MTP


@dataclass(frozen=True)
class PlannedNotification:
    audience: str
    kind: str
    severity: str
    title: str
    body: str
    occurred_at: datetime
    request_id: UUID | None = None
    component: str | None = None
    blood_group: str | None = None
    coalesce: bool = False
    """Update the audience's unread notification for the same stock key instead of adding one."""
    pack: int | None = None
    """The MTP pack it is about: each pack is decided, dispatched and received on its own."""


def hospital_audience(hospital_id: UUID | str) -> str:
    return f"hospital:{hospital_id}"


def units_text(count: int) -> str:
    return f"{count} unit" if count == 1 else f"{count} units"


def _value(code: object) -> str:
    """An enum member's value, or the string itself (``UNKNOWN`` is not a BloodGroup)."""
    return str(getattr(code, "value", code))


def product_text(blood_group: str, component: str) -> str:
    """``O+ red cells``: how staff say it (``red cells, group unknown`` for an emergency release)."""
    words = COMPONENT_WORDS.get(Component(component), component.lower())
    return f"{words}, group unknown" if blood_group == UNKNOWN_GROUP else f"{blood_group} {words}"


def stock_group(blood_group: str | None) -> str | None:
    """The notification's blood group: a stock key's group, never UNKNOWN (that is no stock)."""
    return None if blood_group in (None, UNKNOWN_GROUP) else blood_group


def pack_text(pack: int | None) -> str:
    return f" (MTP pack {pack})" if pack is not None else ""


def short_id(value: UUID | str) -> str:
    """The first 8 hex digits: enough for a person to match a request on a screen."""
    return str(value)[:8]


def _utc(value: datetime) -> str:
    return value.strftime("%d %b %Y %H:%M UTC")


def _asked(facts: RequestFacts | None) -> str:
    """``2 units O+ red cells`` (``MTP packs, group O+``) when the request is known, else empty."""
    if facts is None:
        return ""
    if facts.is_mtp or facts.component is None or facts.units is None:
        group = "group unknown" if facts.blood_group == UNKNOWN_GROUP else f"group {facts.blood_group}"
        return f"MTP packs, {group}"
    return f"{units_text(facts.units)} {product_text(facts.blood_group, facts.component)}"


def _about(request_id: UUID, facts: RequestFacts | None, pack: int | None = None) -> dict[str, object]:
    """The request fields of a notification: its id (and pack), and its product when the request is known."""
    return {
        "request_id": request_id,
        "pack": pack,
        "component": facts.component if facts else None,
        "blood_group": stock_group(facts.blood_group) if facts else None,
    }


def plan_notifications(
    *,
    event_type: str,
    data: BaseModel,
    occurred_at: datetime,
    request: RequestFacts | None = None,
    hospital_audiences: Iterable[str] = (),
) -> list[PlannedNotification]:
    """The notifications ``data`` (a payload of ``event_type``) produces, at most one per audience.

    ``request`` enriches request-scoped texts when the original request is
    known; ``hospital_audiences`` are the hospitals a stock crossing fans out to.
    """
    planner = _PLANNERS.get(event_type)
    if planner is None:
        raise ValueError(f"no notification rule for {event_type!r}")
    return planner(data, occurred_at, request, sorted(set(hospital_audiences)))


def _words(code: StrEnum) -> str:
    """``OBSTETRIC_HAEMORRHAGE`` as "obstetric haemorrhage"."""
    return code.value.lower().replace("_", " ")


def _requested(
    data: schemas.BloodRequestedV1 | schemas.BloodRequestedV2,
    at: datetime,
    _request: RequestFacts | None,
    _hospitals: Sequence[str],
) -> list[PlannedNotification]:
    data = schemas.requested_v2(data)
    group = _value(data.blood_group)
    mtp = data.protocol == RequestProtocol.MTP
    if mtp:
        asked = "massive transfusion packs, " + ("group unknown" if data.group_unknown else f"group {group}")
    else:
        asked = f"{units_text(data.units or 0)} {product_text(group, _value(data.component))}"
    ref = short_id(data.request_id)
    emergency = data.priority == Priority.EMERGENCY
    when = "needed now" if emergency else f"needed by {_utc(data.needed_by)}" if data.needed_by else "scheduled"
    partial = "partial supply accepted" if data.allow_partial else "all units or none"
    common = {
        "request_id": data.request_id,
        "component": None if mtp else _value(data.component),
        "blood_group": stock_group(group),
    }
    # The indication is a code; no free text from the hospital is ever put in a notification (not even
    # authorised_by: the bank's request view shows who authorised; a notification only says that someone did).
    reason = f" Indication: {_words(data.indication)}." if data.indication else ""
    authorised = " Authorised by a clinician." if data.authorised_by else ""
    release = " Emergency release: group O red cells, AB plasma, uncrossmatched." if data.group_unknown else ""
    needs = [r.value.lower().replace("_", "-") for r in data.special_requirements] + [
        f"{antigen}-negative" for antigen in data.antigen_negative
    ]
    needs_text = f" Requirements: {', '.join(needs)}." if needs else ""
    unconfirmed = (
        " Group not confirmed: group O red cells and AB plasma only."
        if not data.group_confirmed and not data.group_unknown
        else ""
    )
    label = "MTP" if mtp else "EMERGENCY" if emergency else "Scheduled"
    return [
        PlannedNotification(
            audience=hospital_audience(data.hospital_id),
            kind="REQUEST_CREATED",
            severity=INFO,
            title=f"Request sent: {asked}" + (" (EMERGENCY)" if emergency else ""),
            body=(
                f"Your {data.priority.value.lower()} request {ref} for {asked} ({when}, {partial}) "
                f"was sent to the blood bank by {data.requested_by}."
            ),
            occurred_at=at,
            **common,
        ),
        PlannedNotification(
            audience=BANK_AUDIENCE,
            kind="REQUEST_CREATED",
            severity=CRITICAL if emergency else INFO,
            title=f"{label} request: {asked} for {data.hospital_name}",
            body=(
                f"{data.hospital_name} requests {asked}, {when} ({partial}). Request {ref}.{reason}{authorised}"
                f"{release}{unconfirmed}{needs_text}"
            ),
            occurred_at=at,
            **common,
        ),
    ]


def _approved(
    data: schemas.BloodApprovedV1, at: datetime, request: RequestFacts | None, _hospitals: Sequence[str]
) -> list[PlannedNotification]:
    ref = short_id(data.request_id)
    mtp = data.pack is not None or (request is not None and request.is_mtp)
    components = Counter(a.component.value for a in data.allocations)
    by_group = Counter(a.blood_group.value for a in data.allocations)
    earliest = min(a.expires_at for a in data.allocations)
    expiry = f" Earliest expiry {_utc(earliest)}."
    if mtp:
        # A pack holds several components: say each one's count.
        product = ", ".join(f"{units_text(n)} {COMPONENT_WORDS[Component(c)]}" for c, n in sorted(components.items()))
        group = stock_group(request.blood_group) if request else None
        common = {"request_id": data.request_id, "pack": data.pack, "component": None, "blood_group": group}
        what = f"MTP pack {data.pack or 1}"
        title_product = f"{what} of request {ref}"
        substitute_text = ""
    else:
        component = (request.component if request else None) or data.allocations[0].component.value
        requested_group = stock_group(request.blood_group) if request else None
        group = requested_group or by_group.most_common(1)[0][0]
        product = product_text(group, component)
        substitutes = {g: n for g, n in by_group.items() if g != group}
        substitute_text = (
            " Compatible substitutes: "
            + ", ".join(f"{units_text(n)} {g}" for g, n in sorted(substitutes.items()))
            + "."
            if substitutes
            else ""
        )
        common = {"request_id": data.request_id, "pack": data.pack, "component": component, "blood_group": group}
        what = f"request {ref}"
        title_product = f"{units_text(data.units_allocated)} {product}"
    amount = (
        f"{data.units_allocated} of {units_text(data.units_requested)}"
        if data.partial
        else units_text(data.units_allocated)
    )
    if data.uncrossmatched:
        groups = ", ".join(f"{units_text(n)} {g}" for g, n in sorted(by_group.items()))
        return [
            PlannedNotification(
                audience=hospital_audience(data.hospital_id),
                kind="EMERGENCY_RELEASE_APPROVED",
                severity=CRITICAL,
                title=f"UNCROSSMATCHED: emergency release approved for {what}",
                body=(
                    f"Emergency release for {what}: {amount} ({product if mtp else groups}) issued UNCROSSMATCHED. "
                    "Watch the patient closely during transfusion and send a sample for group and crossmatch now."
                    + (" Only part of what was asked could be supplied." if data.partial else "")
                    + expiry
                ),
                occurred_at=at,
                **common,
            )
        ]
    if data.partial:
        return [
            PlannedNotification(
                audience=hospital_audience(data.hospital_id),
                kind="REQUEST_PARTIALLY_APPROVED",
                severity=WARNING,
                title=f"Partly approved: {title_product}" if mtp else f"Partly approved: {amount} {product}",
                body=(
                    f"Only {amount} {'(' + product + ')' if mtp else product} could be allocated for {what}; "
                    f"the rest is not available.{substitute_text}{expiry}"
                ),
                occurred_at=at,
                **common,
            )
        ]
    return [
        PlannedNotification(
            audience=hospital_audience(data.hospital_id),
            kind="REQUEST_APPROVED",
            severity=INFO,
            title=f"Approved: {title_product}",
            body=(
                f"{product if mtp else title_product} approved for {what} and reserved for you."
                f"{substitute_text}{expiry}"
            ),
            occurred_at=at,
            **common,
        )
    ]


def _rejected(
    data: schemas.BloodRejectedV1 | schemas.BloodRejectedV2,
    at: datetime,
    request: RequestFacts | None,
    _hospitals: Sequence[str],
) -> list[PlannedNotification]:
    data = schemas.rejected_v2(data)
    ref = short_id(data.request_id)
    asked = _asked(request)
    self_cancelled = data.reason_code == RejectReason.CANCELLED_BEFORE_DECISION
    emergency = request is not None and request.priority == Priority.EMERGENCY
    severity = INFO if self_cancelled else CRITICAL if emergency else WARNING
    why = REJECT_WORDS.get(data.reason_code, data.reason_code.value)
    detail = f" {data.detail}" if data.detail else ""
    return [
        PlannedNotification(
            audience=hospital_audience(data.hospital_id),
            kind="REQUEST_REJECTED",
            severity=severity,
            title=f"Rejected: {asked or f'request {ref}'}{pack_text(data.pack)}",
            body=f"Request {ref}{pack_text(data.pack)}{f' for {asked}' if asked else ''} was rejected: {why}.{detail}",
            occurred_at=at,
            **_about(data.request_id, request, data.pack),
        )
    ]


def _cancelled(
    data: schemas.BloodCancelledV1, at: datetime, request: RequestFacts | None, _hospitals: Sequence[str]
) -> list[PlannedNotification]:
    ref = short_id(data.request_id)
    asked = _asked(request)
    reason = f" Reason: {_words(data.reason_code)}." if data.reason_code else ""
    hospital = request.hospital_name if request else "The hospital"
    common = {
        **_about(data.request_id, request),
        "occurred_at": at,
        "kind": "REQUEST_CANCELLED",
        "severity": INFO,
    }
    what = f"{asked} (request {ref})" if asked else f"request {ref}"
    return [
        PlannedNotification(
            audience=hospital_audience(data.hospital_id),
            title=f"Cancelled: {asked or f'request {ref}'}",
            body=f"Request {ref}{f' for {asked}' if asked else ''} was cancelled by {data.cancelled_by}.{reason}",
            **common,
        ),
        PlannedNotification(
            audience=BANK_AUDIENCE,
            title=f"Cancelled by {hospital}: {asked or f'request {ref}'}",
            body=f"{hospital} cancelled {what}; any units allocated to it are released.{reason}",
            **common,
        ),
    ]


def _released(
    data: schemas.AllocationReleasedV1, at: datetime, request: RequestFacts | None, _hospitals: Sequence[str]
) -> list[PlannedNotification]:
    ref = short_id(data.request_id)
    count = len(data.unit_ids)
    product = f" {product_text(request.blood_group, request.component)}" if request and request.component else ""
    return [
        PlannedNotification(
            audience=hospital_audience(data.hospital_id),
            kind="ALLOCATION_RELEASED",
            severity=INFO,
            title=f"Released: {units_text(count)}{product} of request {ref}",
            body=(
                f"{units_text(count)}{product} reserved for request {ref} went back to the blood bank's stock "
                f"(reason: {data.reason.lower().replace('_', ' ')}). Do not expect them."
            ),
            occurred_at=at,
            **_about(data.request_id, request),
        )
    ]


def _inventory_updated(
    data: schemas.InventoryUpdatedV1, _at: datetime, _request: RequestFacts | None, _hospitals: Sequence[str]
) -> list[PlannedNotification]:
    product = product_text(data.blood_group, data.component)
    # The running count is information; the LOW/CRITICAL *crossing* (low_stock) carries the alarm,
    # so a critical level here is a WARNING and is never escalated twice.
    severity = INFO if data.level == StockLevel.OK else WARNING
    expiring = f", {data.expiring_within_72h} expiring within 72 h" if data.expiring_within_72h else ""
    return [
        PlannedNotification(
            audience=BANK_AUDIENCE,
            kind="INVENTORY_UPDATED",
            severity=severity,
            title=f"Stock {product}: {units_text(data.available_units)} available",
            body=f"{product}: {units_text(data.available_units)} available{expiring}. Level {data.level.value}.",
            occurred_at=data.as_of,
            component=data.component.value,
            blood_group=data.blood_group.value,
            coalesce=True,
        )
    ]


def _low_stock(
    data: schemas.LowStockV1, _at: datetime, _request: RequestFacts | None, hospitals: Sequence[str]
) -> list[PlannedNotification]:
    product = product_text(data.blood_group, data.component)
    available = units_text(data.available_units)
    thresholds = f"low at {data.low_threshold}, critical at {data.critical_threshold}"
    if data.level == StockCrossing.CRITICAL:
        kind, severity = "STOCK_CRITICAL", CRITICAL
        title = f"CRITICAL stock: {product}"
        bank_body = f"Only {available} {product} left ({thresholds}). Restock now."
        hospital_body = (
            f"The blood bank has only {available} {product} left. "
            "Request only what is essential and expect partial supply."
        )
    elif data.level == StockCrossing.LOW:
        kind, severity = "STOCK_LOW", WARNING
        title = f"Low stock: {product}"
        bank_body = f"{product} is low: {available} available ({thresholds})."
        hospital_body = f"The blood bank is low on {product}: {available} available. Plan scheduled requests early."
    else:
        kind, severity = "STOCK_RECOVERED", INFO
        title = f"Stock recovered: {product}"
        bank_body = f"{product} is back above its low threshold: {available} available ({thresholds})."
        hospital_body = f"The blood bank's {product} stock is back to normal: {available} available."
    common = {
        "kind": kind,
        "severity": severity,
        "title": title,
        "occurred_at": data.as_of,
        "component": data.component.value,
        "blood_group": data.blood_group.value,
    }
    bank = PlannedNotification(audience=BANK_AUDIENCE, body=bank_body, **common)
    return [bank, *(PlannedNotification(audience=a, body=hospital_body, **common) for a in hospitals)]


# -- traceability (transfusion.md section 10) ------------------------------------------------------
RECALL_WORDS = {
    "DONOR_INFECTION": "donor infection",
    "BACTERIAL_CONTAMINATION": "bacterial contamination",
    "MANUFACTURING_DEFECT": "manufacturing defect",
    "OTHER": "other cause",
}


def _dins(dins: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(dins[:limit])
    return shown + (f" and {len(dins) - limit} more" if len(dins) > limit else "")


def _dispatched(
    data: schemas.UnitsDispatchedV1, at: datetime, request: RequestFacts | None, _hospitals: Sequence[str]
) -> list[PlannedNotification]:
    ref = short_id(data.request_id)
    count = units_text(len(data.units))
    kinds = Counter(u.component.value for u in data.units)
    product = (
        ", ".join(f"{n} {COMPONENT_WORDS[Component(c)]}" for c, n in sorted(kinds.items()))
        if len(kinds) > 1
        else product_text(data.units[0].blood_group.value, data.units[0].component.value)
    )
    return [
        PlannedNotification(
            audience=hospital_audience(data.hospital_id),
            kind="UNITS_DISPATCHED",
            severity=INFO,
            title=f"On the way: {count} for request {ref}{pack_text(data.pack)}",
            body=(
                f"The blood bank dispatched {count} ({product}) for request {ref}{pack_text(data.pack)}. Scan each "
                f"bag's DIN on arrival: {_dins([u.din for u in data.units])}."
            ),
            occurred_at=at,
            **_about(data.request_id, request, data.pack),
        )
    ]


def _received(
    data: schemas.UnitsReceivedV1, at: datetime, request: RequestFacts | None, _hospitals: Sequence[str]
) -> list[PlannedNotification]:
    ref = short_id(data.request_id)
    hospital = request.hospital_name if request else "The hospital"
    return [
        PlannedNotification(
            audience=BANK_AUDIENCE,
            kind="UNITS_RECEIVED",
            severity=INFO,
            title=f"Received: {units_text(len(data.dins))} of request {ref}{pack_text(data.pack)}",
            body=(
                f"{hospital} scanned in {units_text(len(data.dins))} of request {ref}{pack_text(data.pack)}: "
                f"{_dins(data.dins)}."
            ),
            occurred_at=at,
            **_about(data.request_id, request, data.pack),
        )
    ]


def _fate(
    data: schemas.UnitFateV1, at: datetime, request: RequestFacts | None, _hospitals: Sequence[str]
) -> list[PlannedNotification]:
    if not data.adverse_reaction:
        return []  # other fates notify nobody: the bank's trace shows them
    hospital = request.hospital_name if request else "A hospital"
    product = product_text(data.unit.blood_group.value, data.unit.component.value)
    return [
        PlannedNotification(
            audience=BANK_AUDIENCE,
            kind="ADVERSE_REACTION",
            severity=WARNING,
            title=f"Adverse reaction: unit {data.unit.din}",
            body=(
                f"{hospital} reports an adverse reaction to unit {data.unit.din} ({product}), transfused "
                f"{_utc(data.started_at)}. Check the other components of this donation and start the "
                "haemovigilance report."
            ),
            occurred_at=at,
            component=data.unit.component.value,
            blood_group=data.unit.blood_group.value,
        )
    ]


def _fate_overdue(
    data: schemas.FateOverdueV1, at: datetime, _request: RequestFacts | None, _hospitals: Sequence[str]
) -> list[PlannedNotification]:
    count = units_text(len(data.units))
    return [
        PlannedNotification(
            audience=hospital_audience(data.hospital_id),
            kind="FATE_OVERDUE",
            severity=WARNING,
            title=f"Fate not recorded: {count}",
            body=(
                f"{count} issued to you more than {data.overdue_after_hours} hours ago have no recorded fate "
                f"(transfused, wasted or returned): {_dins([u.din for u in data.units])}. Record each one."
            ),
            occurred_at=data.as_of,
        )
    ]


def _recall_issued(
    data: schemas.RecallIssuedV1, at: datetime, _request: RequestFacts | None, _hospitals: Sequence[str]
) -> list[PlannedNotification]:
    ref = short_id(data.recall_id)
    why = RECALL_WORDS.get(data.reason.value, data.reason.value)
    issued = sum(len(h.units) for h in data.hospitals)
    common = {"kind": "RECALL_ISSUED", "severity": CRITICAL, "occurred_at": at}
    bank = PlannedNotification(
        audience=BANK_AUDIENCE,
        title=f"RECALL {ref}: {len(data.dins)} donation(s), {data.severity.value}",
        body=(
            f"Recall {ref} ({why}) of {_dins(data.dins)}: units in stock quarantined; {units_text(issued)} "
            f"at {len(data.hospitals)} hospital(s) must be accounted for."
        ),
        **common,
    )
    return [
        bank,
        *(
            PlannedNotification(
                audience=hospital_audience(h.hospital_id),
                title=f"RECALL: {units_text(len(h.units))} — do not transfuse",
                body=(
                    f"The blood bank recalls {_dins([u.din for u in h.units])} ({why}, {data.severity.value}). "
                    "Units held are quarantined: do not transfuse; waste or return them. For any already "
                    "transfused, follow up the recipient (look-back)."
                ),
                **common,
            )
            for h in data.hospitals
        ),
    ]


def _recall_acknowledged(
    data: schemas.RecallAcknowledgedV1, at: datetime, _request: RequestFacts | None, _hospitals: Sequence[str]
) -> list[PlannedNotification]:
    ref = short_id(data.recall_id)
    states = Counter(a.state.value for a in data.units)
    transfused = states.get("TRANSFUSED", 0)
    summary = ", ".join(f"{n} {state.lower().replace('_', ' ')}" for state, n in sorted(states.items()))
    return [
        PlannedNotification(
            audience=BANK_AUDIENCE,
            kind="RECALL_ACKNOWLEDGED",
            severity=WARNING if transfused else INFO,
            title=f"Recall {ref} answered" + (f": {units_text(transfused)} transfused" if transfused else ""),
            body=f"A hospital answered recall {ref}: {summary}."
            + (" Look-back needed for the transfused recipients." if transfused else ""),
            occurred_at=at,
        )
    ]


def _mtp_pack_requested(
    data: schemas.MtpPackRequestedV1, at: datetime, request: RequestFacts | None, _hospitals: Sequence[str]
) -> list[PlannedNotification]:
    ref = short_id(data.request_id)
    hospital = request.hospital_name if request else "A hospital"
    group = f", {_asked(request).removeprefix('MTP packs, ')}" if request else ""
    return [
        PlannedNotification(
            audience=BANK_AUDIENCE,
            kind="MTP_PACK_REQUESTED",
            severity=CRITICAL,
            title=f"MTP pack {data.pack} requested by {hospital}",
            body=(
                f"{hospital} asks for MTP pack {data.pack} of request {ref}{group} (asked by {data.requested_by}). "
                "Prepare and dispatch it now."
            ),
            occurred_at=at,
            **_about(data.request_id, request, data.pack),
        )
    ]


def _mtp_stopped(
    data: schemas.MtpStoppedV1, at: datetime, request: RequestFacts | None, _hospitals: Sequence[str]
) -> list[PlannedNotification]:
    ref = short_id(data.request_id)
    hospital = request.hospital_name if request else "A hospital"
    return [
        PlannedNotification(
            audience=BANK_AUDIENCE,
            kind="MTP_STOPPED",
            severity=INFO,
            title=f"MTP stopped by {hospital}: request {ref}",
            body=(
                f"{hospital} stopped the massive transfusion protocol of request {ref} ({data.stopped_by}). "
                "Units not yet dispatched go back to stock; no further pack will be asked for."
            ),
            occurred_at=at,
            **_about(data.request_id, request),
        )
    ]


def escalation_text(*, title: str, unread_for_seconds: float) -> tuple[str, str]:
    """Title and body of the re-raised notification."""
    if unread_for_seconds >= 120:
        waited = f"{round(unread_for_seconds / 60)} minutes"
    else:
        waited = f"{round(unread_for_seconds)} seconds"
    return (
        f"Still unread: {title}"[:200],
        f"This critical alert has not been read for {waited}: {title}. Please check it now.",
    )


_PLANNERS = {
    topics.REQUESTED: _requested,
    topics.APPROVED: _approved,
    topics.REJECTED: _rejected,
    topics.CANCELLED: _cancelled,
    topics.RELEASED: _released,
    topics.INVENTORY_UPDATED: _inventory_updated,
    topics.LOW_STOCK: _low_stock,
    topics.UNITS_DISPATCHED: _dispatched,
    topics.UNITS_RECEIVED: _received,
    topics.UNIT_FATE: _fate,
    topics.FATE_OVERDUE: _fate_overdue,
    topics.RECALL_ISSUED: _recall_issued,
    topics.RECALL_ACKNOWLEDGED: _recall_acknowledged,
    topics.MTP_PACK_REQUESTED: _mtp_pack_requested,
    topics.MTP_STOPPED: _mtp_stopped,
}
