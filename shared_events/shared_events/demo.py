"""Demo tenants and logins, the same in every service's ``seed_demo`` command.

Hospital ids are fixed (UUID5 of the name) so that the three databases agree
on them without talking to each other.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

_NAMESPACE = uuid.UUID("6f1d3c52-93a4-4c38-9a0e-0c1f6f4b2a10")


@dataclass(frozen=True)
class DemoHospital:
    name: str
    username: str

    @property
    def id(self) -> uuid.UUID:
        return uuid.uuid5(_NAMESPACE, self.name)

    @property
    def audience(self) -> str:
        return f"hospital:{self.id}"


HOSPITALS = (
    DemoHospital(name="St Mary's Hospital", username="stmary_staff"),
    DemoHospital(name="City General Hospital", username="citygeneral_staff"),
)
BANK_ADMIN = "bank_admin"
BANK_AUDIENCE = "bloodbank"


def demo_password() -> str:
    return os.environ.get("DEMO_PASSWORD", "demo-password")
