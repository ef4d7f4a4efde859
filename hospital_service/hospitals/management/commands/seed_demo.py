"""Create the demo hospitals and their staff logins (idempotent: a second run changes nothing)."""

from django.core.management.base import BaseCommand

from hospitals.services import ensure_hospital, ensure_staff_user
from shared_events.demo import HOSPITALS, add_development_argument, seed_password


class Command(BaseCommand):
    help = "Create the demo hospitals (fixed ids) and their staff users."

    def add_arguments(self, parser) -> None:
        add_development_argument(parser)

    def handle(self, *args, **options) -> None:
        password = seed_password(development=options["development"])
        for demo in HOSPITALS:
            hospital = ensure_hospital(hospital_id=demo.id, name=demo.name)
            ensure_staff_user(username=demo.username, password=password, hospital=hospital)
            self.stdout.write(f"{demo.name} ({demo.id}): staff user {demo.username}")
