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


# Published in the README for `make run`: development seeding only, never with DEBUG off.
DEVELOPMENT_PASSWORD = "demo-password"  # noqa: S105 - the documented development login, refused in production


def demo_password() -> str:
    """The demo logins' password as clients (tests, ``make run``'s banner) should type it."""
    return os.environ.get("DEMO_PASSWORD") or DEVELOPMENT_PASSWORD


def seed_password(*, development: bool) -> str:
    """The password ``seed_demo`` gives the demo logins; CommandError where that would be unsafe.

    With DEBUG on, or told ``--development`` (``make run``'s stack), it is ``$DEMO_PASSWORD`` or
    the published development password. With DEBUG off it must be ``$DEMO_PASSWORD``, chosen by
    whoever deploys (``make up`` writes a random one), and never the published one.
    """
    from django.conf import settings
    from django.core.management import CommandError

    password = os.environ.get("DEMO_PASSWORD", "")
    if settings.DEBUG or development:
        return password or DEVELOPMENT_PASSWORD
    if not password or password == DEVELOPMENT_PASSWORD:
        raise CommandError(
            "seed_demo creates logins with a known password: with DEBUG off, set DEMO_PASSWORD to a "
            "password of your own (not the published development one), or pass --development on a "
            "development stack."
        )
    return password


def add_development_argument(parser) -> None:
    """``seed_demo --development``: seed with the published password although DEBUG is off."""
    parser.add_argument(
        "--development",
        action="store_true",
        help="a development stack (make run): allow the published demo password although DEBUG is off",
    )
