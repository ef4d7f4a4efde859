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
    BloodGroup,
    CancelReason,
    Component,
    Indication,
    Priority,
    RejectReason,
    StockCrossing,
    StockLevel,
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


class BloodApprovedV1(Payload):
    """The blood bank allocated units to a request (``partial``: fewer than asked)."""

    request_id: UUID
    hospital_id: UUID
    units_requested: int = Field(ge=1)
    units_allocated: int = Field(ge=1)
    partial: bool
    allocations: list[Allocation] = Field(min_length=1)
    decided_at: UtcDatetime

    @model_validator(mode="after")
    def _counts_match(self) -> BloodApprovedV1:
        if len(self.allocations) != self.units_allocated:
            raise ValueError("units_allocated must equal the number of allocations")
        if self.units_allocated > self.units_requested:
            raise ValueError("more units allocated than requested")
        return self


class BloodRejectedV1(Payload):
    """The blood bank could not allocate anything to a request."""

    request_id: UUID
    hospital_id: UUID
    reason_code: RejectReason
    detail: str
    decided_at: UtcDatetime


class AllocationReleasedV1(Payload):
    """Units allocated to a request went back to stock (e.g. after a cancel)."""

    request_id: UUID
    hospital_id: UUID
    unit_ids: list[UUID]
    reason: str
    released_at: UtcDatetime


class InventoryUpdatedV1(Payload):
    """The blood bank's available count of one component and group changed."""

    component: Component
    blood_group: BloodGroup
    available_units: int = Field(ge=0)
    expiring_within_72h: int = Field(ge=0)
    level: StockLevel
    as_of: UtcDatetime


class LowStockV1(Payload):
    """A component and group crossed a threshold: LOW, CRITICAL, or RECOVERED (back to OK)."""

    component: Component
    blood_group: BloodGroup
    level: StockCrossing
    available_units: int = Field(ge=0)
    low_threshold: int = Field(ge=0)
    critical_threshold: int = Field(ge=0)
    as_of: UtcDatetime


class NotificationDeliveredV1(Payload):
    """A notification was delivered to an audience (``hospital:<id>`` or ``bloodbank``)."""

    notification_id: UUID
    audience: str = Field(pattern=r"^(bloodbank|hospital:[0-9a-f-]{36})$")
    channel: Literal["in_app"] = "in_app"
    source_event_id: UUID
    source_event_type: str
    delivered_at: UtcDatetime
