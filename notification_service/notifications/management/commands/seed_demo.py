"""Demo users and their audiences (idempotent: a second run changes nothing)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from notifications.services import register_hospital, register_recipient
from shared_events.demo import BANK_ADMIN, BANK_AUDIENCE, HOSPITALS, add_development_argument, seed_password


class Command(BaseCommand):
    help = "Create the demo users (hospital staff and bank admin) with their notification audiences."

    def add_arguments(self, parser) -> None:
        add_development_argument(parser)

    def handle(self, *args, **options) -> None:
        password = seed_password(development=options["development"])
        with transaction.atomic():
            for hospital in HOSPITALS:
                register_hospital(hospital_id=hospital.id, name=hospital.name)
                self._user(hospital.username, password, audience=hospital.audience, staff=False)
            self._user(BANK_ADMIN, password, audience=BANK_AUDIENCE, staff=True)
        self.stdout.write(
            self.style.SUCCESS("demo users ready: " + ", ".join([*(h.username for h in HOSPITALS), BANK_ADMIN]))
        )

    def _user(self, username: str, password: str, *, audience: str, staff: bool) -> None:
        user, _ = get_user_model().objects.get_or_create(username=username, defaults={"is_staff": staff})
        changed = []
        if user.is_staff != staff:
            user.is_staff = staff
            changed.append("is_staff")
        if not user.check_password(password):
            user.set_password(password)
            changed.append("password")
        if changed:
            user.save(update_fields=changed)
        recipient = getattr(user, "recipient", None)
        if recipient is None or recipient.audience != audience:
            register_recipient(user=user, audience=audience)
