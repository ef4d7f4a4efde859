"""Create the demo hospitals and their staff logins (idempotent: a second run changes nothing)."""

from django.core.management.base import BaseCommand

from hospitals.services import ensure_hospital, ensure_staff_user
from shared_events.demo import HOSPITALS, demo_password


class Command(BaseCommand):
    help = "Create the demo hospitals (fixed ids) and their staff users."

    def handle(self, *args, **options) -> None:
        for demo in HOSPITALS:
            hospital = ensure_hospital(hospital_id=demo.id, name=demo.name)
            ensure_staff_user(username=demo.username, password=demo_password(), hospital=hospital)
            self.stdout.write(f"{demo.name} ({demo.id}): staff user {demo.username}")
