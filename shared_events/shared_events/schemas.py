"""Payload models, one class per event type and major version (``events.md``).

Consumers ignore fields they do not know (``extra="ignore"``), so producers may
add optional fields within a major version.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from shared_events.enums import (
    ANTIGENS,
    UNKNOWN_GROUP,
    BloodGroup,
    CancelReason,
    Component,
    Fate,
    Indication,
    Priority,
    RecallReason,
    RecallSeverity,
    RecallUnitState,
    RejectReason,
    RequestProtocol,
    SpecialRequirement,
    StockCrossing,
    StockLevel,
    UnitAttribute,
    WasteReason,
)


def _to_utc(value: datetime) -> datetime:
    from datetime import UTC

    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, use_enum_values=False)


class BloodRequestedV1(Payload):
    """A hospital asks the blood bank for units (``needed_by`` is required for SCHEDULED)."""

    request_id: UUID
    hospital_id: UUID
    hospital_name: str = Field(min_length=1, max_length=200)
    blood_group: BloodGroup
    component: Component
    units: int = Field(ge=1, le=20)
    priority: Priority
    needed_by: UtcDatetime | None = None
    allow_partial: bool
    patient_reference: str | None = Field(default=None, max_length=64)
    # The clinical indication as a code. The hospital's free-text note never travels (an older
    # producer's ``reason`` text is ignored, never stored or shown: free text can identify a patient).
    indication: Indication | None = None
    requested_by: str
    requested_at: UtcDatetime

    @model_validator(mode="after")
    def _scheduled_needs_needed_by(self) -> BloodRequestedV1:
        if self.priority == Priority.SCHEDULED and self.needed_by is None:
            raise ValueError("needed_by is required for SCHEDULED requests")
        return self


Antigen = Literal[*ANTIGENS]

ProductCode = Annotated[
    str,
    Field(
        pattern=r"^E[0-9A-Z]{4}[0-9A-Z][0-9A-Z][0-9a-z]$",
        description="ISBT 128 Product Code: PDC (E + 4), type of donation, division (2)",
    ),
]
Division = Annotated[str, Field(pattern=r"^([0A-Z]0|[A-Z][a-z])$", description="ISBT 128 division: 00, A0, Ab ...")]


class BloodRequestedV2(Payload):
    """A hospital asks the blood bank for units, or for massive transfusion packs (``protocol`` MTP).

    v2 adds emergency release (``blood_group`` UNKNOWN with ``authorised_by``), ``group_confirmed``
    (false, the safe choice, unless two concordant group determinations were made),
    ``rhd_negative_required``, special requirements and antigen-negative units, and MTP, which has no
    ``component`` or ``units``. The bank rejects a combination transfusion.md forbids (e.g. UNKNOWN on
    a SCHEDULED request) as INVALID_REQUEST, so such an event is decided, not dead-lettered.
    """

    request_id: UUID
    hospital_id: UUID
    hospital_name: str = Field(min_length=1, max_length=200)
    blood_group: BloodGroup | Literal["UNKNOWN"]
    protocol: RequestProtocol = RequestProtocol.STANDARD
    component: Component | None = None
    units: int | None = Field(default=None, ge=1, le=20)
    priority: Priority
    needed_by: UtcDatetime | None = None
    allow_partial: bool
    authorised_by: str | None = Field(default=None, min_length=1, max_length=150)
    group_confirmed: bool = False
    rhd_negative_required: bool = True
    special_requirements: list[SpecialRequirement] = Field(default_factory=list)
    antigen_negative: list[Antigen] = Field(default_factory=list)
    patient_reference: str | None = Field(default=None, max_length=64)
    indication: Indication | None = None
    requested_by: str
    requested_at: UtcDatetime

    @model_validator(mode="after")
    def _shape(self) -> BloodRequestedV2:
        if self.priority == Priority.SCHEDULED and self.needed_by is None:
            raise ValueError("needed_by is required for SCHEDULED requests")
        if self.protocol == RequestProtocol.MTP:
            if self.component is not None or self.units is not None:
                raise ValueError("an MTP request has no component or units: the packs say what is sent")
        elif self.component is None or self.units is None:
            raise ValueError("component and units are required (except for MTP)")
        return self

    @property
    def group_unknown(self) -> bool:
        return self.blood_group == UNKNOWN_GROUP

    @classmethod
    def from_v1(cls, v1: BloodRequestedV1) -> BloodRequestedV2:
        """A v1 request as v2: group not confirmed (v1 could not say so), RhD-negative required, no needs."""
        return cls.model_validate(v1.model_dump())


def requested_v2(data: BloodRequestedV1 | BloodRequestedV2) -> BloodRequestedV2:
    """The payload of a ``hospital.blood.requested`` event of either major, as v2."""
    return data if isinstance(data, BloodRequestedV2) else BloodRequestedV2.from_v1(data)


class BloodCancelledV1(Payload):
    """A hospital cancels a request; units allocated to it are released."""

    request_id: UUID
    hospital_id: UUID
    # A code; the hospital's free-text note stays there (an older producer's ``reason`` is ignored).
    reason_code: CancelReason | None = None
    cancelled_by: str
    cancelled_at: UtcDatetime


class Allocation(Payload):
    """One unit allocated to a request; its ``blood_group`` may be a compatible substitute."""

    unit_id: UUID
    din: str
    component: Component
    blood_group: BloodGroup
    expires_at: UtcDatetime
    batch: str
    # Optional since transfusion.md sections 6 and 8 (absent from older producers' events).
    product_code: ProductCode | None = None
    division: Division | None = None
    special_attributes: list[UnitAttribute] = Field(default_factory=list)


class BloodApprovedV1(Payload):
    """The blood bank allocated units to a request (``partial``: fewer than asked)."""

    request_id: UUID
    hospital_id: UUID
    units_requested: int = Field(ge=1)
    units_allocated: int = Field(ge=1)
    partial: bool
    allocations: list[Allocation] = Field(min_length=1)
    decided_at: UtcDatetime
    pack: int | None = Field(default=None, ge=1, description="the MTP pack this decision is for")
    uncrossmatched: bool = Field(default=False, description="emergency release of a patient of unknown group")

    @model_validator(mode="after")
    def _counts_match(self) -> BloodApprovedV1:
        if len(self.allocations) != self.units_allocated:
            raise ValueError("units_allocated must equal the number of allocations")
        if self.units_allocated > self.units_requested:
            raise ValueError("more units allocated than requested")
        return self


_V1_REJECT_REASONS = frozenset(RejectReason) - {RejectReason.NO_UNITS_MEETING_REQUIREMENTS}


class BloodRejectedV1(Payload):
    """The blood bank could not allocate anything to a request."""

    request_id: UUID
    hospital_id: UUID
    reason_code: RejectReason
    detail: str
    decided_at: UtcDatetime

    @model_validator(mode="after")
    def _v1_reasons_only(self) -> BloodRejectedV1:
        if self.reason_code not in _V1_REJECT_REASONS:
            raise ValueError(f"reason_code {self.reason_code} exists from v2 on")
        return self


class BloodRejectedV2(Payload):
    """v2: adds NO_UNITS_MEETING_REQUIREMENTS (a v1 reader would refuse it) and the MTP ``pack``."""

    request_id: UUID
    hospital_id: UUID
    reason_code: RejectReason
    detail: str
    decided_at: UtcDatetime
    pack: int | None = Field(default=None, ge=1)


def rejected_v2(data: BloodRejectedV1 | BloodRejectedV2) -> BloodRejectedV2:
    """The payload of a ``bloodbank.blood.rejected`` event of either major, as v2."""
    return data if isinstance(data, BloodRejectedV2) else BloodRejectedV2.model_validate(data.model_dump())


class AllocationReleasedV1(Payload):
    """Units allocated to a request went back to stock (e.g. after a cancel)."""

    request_id: UUID
    hospital_id: UUID
    unit_ids: list[UUID]
    reason: str
    released_at: UtcDatetime


class InventoryUpdatedV1(Payload):
    """The blood bank's available count of one component and group changed.

    A level change is sent at once; a change of the count alone within a few seconds of the key's last event
    is sent with the next ones, as one event with the latest count (docs/events.md). Apply the latest ``as_of``.
    """

    component: Component
    blood_group: BloodGroup
    available_units: int = Field(ge=0)
    expiring_within_72h: int = Field(ge=0)
    level: StockLevel
    as_of: UtcDatetime
    days_of_supply: float | None = Field(
        default=None, ge=0, description="available / mean daily issue over 28 days; null: none issued"
    )


class LowStockV1(Payload):
    """A component and group crossed a threshold: LOW, CRITICAL, or RECOVERED (back to OK)."""

    component: Component
    blood_group: BloodGroup
    level: StockCrossing
    available_units: int = Field(ge=0)
    low_threshold: int = Field(ge=0)
    critical_threshold: int = Field(ge=0)
    as_of: UtcDatetime
    days_of_supply: float | None = Field(default=None, ge=0)
    low_days: float | None = Field(default=None, ge=0)
    critical_days: float | None = Field(default=None, ge=0)


class NotificationDeliveredV1(Payload):
    """A notification was delivered to an audience (``hospital:<id>`` or ``bloodbank``)."""

    notification_id: UUID
    audience: str = Field(pattern=r"^(bloodbank|hospital:[0-9a-f-]{36})$")
    channel: Literal["in_app"] = "in_app"
    source_event_id: UUID
    source_event_type: str
    delivered_at: UtcDatetime


# -- vein-to-vein traceability (transfusion.md sections 1-4, 10) ------------------------------

Din = Annotated[str, Field(pattern=r"^[A-Z0-9][0-9]{12}$", description="ISBT 128 DIN, 13 characters")]
PatientReference = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/#-]*$",
        description="opaque (e.g. a record number), never a name",
    ),
]


class UnitEntry(Payload):
    """One unit as the traceability events name it."""

    unit_id: UUID
    din: Din
    product_code: ProductCode | None = None
    division: Division = "00"
    component: Component
    blood_group: BloodGroup
    expires_at: UtcDatetime
    special_attributes: list[str] = Field(default_factory=list)


class UnitsDispatchedV1(Payload):
    """The bank sent these units to the hospital for the request (bank status ISSUED).

    The bank's courier and note are free text: they stay at the bank.
    """

    request_id: UUID
    hospital_id: UUID
    pack: int | None = Field(default=None, ge=1)
    units: list[UnitEntry] = Field(min_length=1)
    dispatched_by: str
    dispatched_at: UtcDatetime


class UnitsReceivedV1(Payload):
    """The hospital scanned the dispatched units in: their DINs matched the dispatch."""

    request_id: UUID
    hospital_id: UUID
    pack: int | None = Field(default=None, ge=1)
    dins: list[Din] = Field(min_length=1)
    unit_ids: list[UUID] = Field(default_factory=list)
    received_by: str
    received_at: UtcDatetime


class UnitFateV1(Payload):
    """The final fate of one issued unit, recorded once at the hospital."""

    request_id: UUID
    hospital_id: UUID
    unit: UnitEntry
    fate: Fate
    recorded_by: str
    recorded_at: UtcDatetime
    # TRANSFUSED
    patient_reference: PatientReference | None = None
    started_at: UtcDatetime | None = None
    ended_at: UtcDatetime | None = None
    adverse_reaction: bool = False
    # WASTED
    reason: WasteReason | None = None
    # RETURNED
    left_storage_at: UtcDatetime | None = None
    returned_at: UtcDatetime | None = None
    cold_chain_intact: bool | None = None

    @model_validator(mode="after")
    def _fields_of_the_fate(self) -> UnitFateV1:
        if self.fate == Fate.TRANSFUSED:
            if self.patient_reference is None or self.started_at is None:
                raise ValueError("TRANSFUSED needs patient_reference and started_at")
            if self.ended_at is not None and self.ended_at < self.started_at:
                raise ValueError("ended_at is before started_at")
        elif self.fate == Fate.WASTED:
            if self.reason is None:
                raise ValueError("WASTED needs a reason")
        elif self.left_storage_at is None or self.returned_at is None or self.cold_chain_intact is None:
            raise ValueError("RETURNED needs left_storage_at, returned_at and cold_chain_intact")
        elif self.returned_at < self.left_storage_at:
            raise ValueError("returned_at is before left_storage_at")
        if self.fate != Fate.TRANSFUSED and self.patient_reference is not None:
            raise ValueError("patient_reference belongs to a transfusion only")
        return self


class OverdueUnit(UnitEntry):
    request_id: UUID
    dispatched_at: UtcDatetime


class FateOverdueV1(Payload):
    """Units issued to the hospital longer than ``overdue_after_hours`` ago with no fate recorded."""

    hospital_id: UUID
    overdue_after_hours: int = Field(ge=1)
    units: list[OverdueUnit] = Field(min_length=1)
    as_of: UtcDatetime


class RecalledUnit(UnitEntry):
    request_id: UUID | None = None
    bank_status: str = Field(description="the unit's status at the bank when recalled")


class RecallHospital(Payload):
    hospital_id: UUID
    units: list[RecalledUnit] = Field(min_length=1)


class RecallIssuedV1(Payload):
    """The bank recalls donations (DINs): each hospital must quarantine and account for its listed units.

    The bank's note is free text: it stays at the bank; ``reason`` carries the cause.
    """

    recall_id: UUID
    reason: RecallReason
    severity: RecallSeverity
    dins: list[Din] = Field(min_length=1)
    hospitals: list[RecallHospital] = Field(default_factory=list)
    issued_by: str
    issued_at: UtcDatetime


class RecallAnswer(Payload):
    unit_id: UUID
    din: Din
    state: RecallUnitState
    patient_reference: PatientReference | None = None
    started_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _look_back(self) -> RecallAnswer:
        transfused = self.state == RecallUnitState.TRANSFUSED
        if transfused and (self.patient_reference is None or self.started_at is None):
            raise ValueError("a TRANSFUSED unit needs patient_reference and started_at (the look-back)")
        if not transfused and self.patient_reference is not None:
            raise ValueError("patient_reference belongs to a transfused unit only")
        return self


class RecallAcknowledgedV1(Payload):
    """A hospital's answer to a recall, sent at once and again on every later change of a unit."""

    recall_id: UUID
    hospital_id: UUID
    units: list[RecallAnswer] = Field(min_length=1)
    acknowledged_by: str
    acknowledged_at: UtcDatetime


# -- massive transfusion protocol (transfusion.md section 7) -----------------------------------


class MtpPackRequestedV1(Payload):
    """The hospital asks for the next pack of an active MTP request (pack 1 comes with the request)."""

    request_id: UUID
    hospital_id: UUID
    pack: int = Field(ge=2)
    requested_by: str
    requested_at: UtcDatetime


class MtpStoppedV1(Payload):
    """The hospital stopped an MTP: the bank releases the units it has not dispatched (MTP_STOPPED)."""

    request_id: UUID
    hospital_id: UUID
    stopped_by: str
    stopped_at: UtcDatetime
