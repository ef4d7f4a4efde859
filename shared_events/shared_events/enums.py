"""Value types shared by the event schemas and the services' models."""

from __future__ import annotations

from enum import StrEnum


class BloodGroup(StrEnum):
    O_NEG = "O-"
    O_POS = "O+"
    A_NEG = "A-"
    A_POS = "A+"
    B_NEG = "B-"
    B_POS = "B+"
    AB_NEG = "AB-"
    AB_POS = "AB+"

    @property
    def abo(self) -> str:
        return self.value[:-1]

    @property
    def rhd_positive(self) -> bool:
        return self.value.endswith("+")


class Component(StrEnum):
    WHOLE_BLOOD = "WHOLE_BLOOD"
    RED_CELLS = "RED_CELLS"
    PLASMA = "PLASMA"
    PLATELETS = "PLATELETS"
    CRYO = "CRYO"


class Priority(StrEnum):
    EMERGENCY = "EMERGENCY"
    SCHEDULED = "SCHEDULED"


class Indication(StrEnum):
    """Why blood is requested, as a code: the only clinical context that leaves the hospital (the
    free-text note stays in the hospital's database; free text can name a patient)."""

    TRAUMA = "TRAUMA"
    SURGERY = "SURGERY"
    OBSTETRIC_HAEMORRHAGE = "OBSTETRIC_HAEMORRHAGE"
    ANAEMIA = "ANAEMIA"
    ONCOLOGY = "ONCOLOGY"
    OTHER = "OTHER"


UNKNOWN_GROUP = "UNKNOWN"
"""``blood_group`` of an EMERGENCY request for a patient not yet typed: emergency release (transfusion.md section 5)."""


class RequestProtocol(StrEnum):
    """STANDARD: one component, a number of units. MTP: massive transfusion packs (transfusion.md section 7)."""

    STANDARD = "STANDARD"
    MTP = "MTP"


class SpecialRequirement(StrEnum):
    """What a request may require of its units (transfusion.md section 6)."""

    IRRADIATED = "IRRADIATED"
    CMV_NEGATIVE = "CMV_NEGATIVE"
    LEUKOREDUCED = "LEUKOREDUCED"
    WASHED = "WASHED"
    HBS_NEGATIVE = "HBS_NEGATIVE"


class UnitAttribute(StrEnum):
    """What a unit may carry: the special requirements plus HT_NEGATIVE (low-titre anti-A/B plasma)."""

    IRRADIATED = "IRRADIATED"
    CMV_NEGATIVE = "CMV_NEGATIVE"
    LEUKOREDUCED = "LEUKOREDUCED"
    WASHED = "WASHED"
    HBS_NEGATIVE = "HBS_NEGATIVE"
    HT_NEGATIVE = "HT_NEGATIVE"


ANTIGENS: tuple[str, ...] = ("C", "c", "E", "e", "K", "k", "Fya", "Fyb", "Jka", "Jkb", "M", "N", "S", "s")
"""Red-cell antigens a unit can be typed negative for and a request can ask to lack (case-sensitive)."""


class CancelReason(StrEnum):
    """Why a request was cancelled, as a code (the free-text note stays at the hospital)."""

    NOT_REQUIRED = "NOT_REQUIRED"
    ENTERED_IN_ERROR = "ENTERED_IN_ERROR"
    DUPLICATE = "DUPLICATE"
    OTHER = "OTHER"


class RejectReason(StrEnum):
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    NO_COMPATIBLE_UNITS = "NO_COMPATIBLE_UNITS"
    INVALID_REQUEST = "INVALID_REQUEST"
    NEEDED_BY_PASSED = "NEEDED_BY_PASSED"
    CANCELLED_BEFORE_DECISION = "CANCELLED_BEFORE_DECISION"
    # v2 of bloodbank.blood.rejected only: compatible units exist, none has what the request requires.
    NO_UNITS_MEETING_REQUIREMENTS = "NO_UNITS_MEETING_REQUIREMENTS"


class StockLevel(StrEnum):
    OK = "OK"
    LOW = "LOW"
    CRITICAL = "CRITICAL"


class StockCrossing(StrEnum):
    LOW = "LOW"
    CRITICAL = "CRITICAL"
    RECOVERED = "RECOVERED"


class Fate(StrEnum):
    """What finally became of an issued unit (``transfusion.md`` section 1)."""

    TRANSFUSED = "TRANSFUSED"
    WASTED = "WASTED"
    RETURNED = "RETURNED"


class WasteReason(StrEnum):
    EXPIRED = "EXPIRED"
    TEMPERATURE_EXCURSION = "TEMPERATURE_EXCURSION"
    DAMAGED = "DAMAGED"
    NOT_REQUIRED_OUT_TOO_LONG = "NOT_REQUIRED_OUT_TOO_LONG"
    CONTAMINATION_SUSPECTED = "CONTAMINATION_SUSPECTED"
    RECALLED = "RECALLED"
    OTHER = "OTHER"


class BankDiscardReason(StrEnum):
    """Why the bank discarded a unit from its own stock (transfusion.md section 9)."""

    EXPIRED = "EXPIRED"
    FAILED_TESTING = "FAILED_TESTING"
    DAMAGED = "DAMAGED"
    RECALLED = "RECALLED"
    TEMPERATURE_EXCURSION = "TEMPERATURE_EXCURSION"
    OTHER = "OTHER"


class RecallReason(StrEnum):
    DONOR_INFECTION = "DONOR_INFECTION"
    BACTERIAL_CONTAMINATION = "BACTERIAL_CONTAMINATION"
    MANUFACTURING_DEFECT = "MANUFACTURING_DEFECT"
    OTHER = "OTHER"


class RecallSeverity(StrEnum):
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class RecallUnitState(StrEnum):
    """A hospital's answer for one recalled unit."""

    QUARANTINED_HERE = "QUARANTINED_HERE"
    IN_TRANSIT = "IN_TRANSIT"
    TRANSFUSED = "TRANSFUSED"
    WASTED = "WASTED"
    RETURNED = "RETURNED"


class Service(StrEnum):
    """The producing services, as they appear in the envelope's ``source``."""

    HOSPITAL = "hospital-service"
    BLOODBANK = "bloodbank-service"
    NOTIFICATION = "notification-service"


def choices(values: type[StrEnum]) -> list[tuple[str, str]]:
    """Django ``choices`` for a value type: each value with a readable label.

    ``RED_CELLS`` reads "Red Cells"; a blood group such as ``AB+`` stays as it is.
    """
    return [
        (v.value, v.value.replace("_", " ").title() if v.value.replace("_", "").isalpha() else v.value) for v in values
    ]
