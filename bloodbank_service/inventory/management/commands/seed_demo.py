"""Demo data: the bank admin, default thresholds, and a realistic inventory. Idempotent."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from inventory.demo import FACILITY, demo_units
from inventory.models import Unit, UnitStatus, UnitStatusChange
from inventory.permissions import BANK_STAFF_GROUP
from inventory.services import ALL_KEYS, ensure_products, ensure_stock_keys, refresh_stock
from shared_events.demo import BANK_ADMIN, add_development_argument, seed_password


class Command(BaseCommand):
    help = (
        "Create bank_admin, the product table, default thresholds and about 370 demo units "
        "(running it again changes nothing)."
    )

    def add_arguments(self, parser) -> None:
        add_development_argument(parser)

    def handle(self, *args, **options) -> None:
        password = seed_password(development=options["development"])
        with transaction.atomic():
            group, _ = Group.objects.get_or_create(name=BANK_STAFF_GROUP)
            user, created = get_user_model().objects.get_or_create(
                username=BANK_ADMIN, defaults={"is_staff": True, "is_superuser": True}
            )
            if created:
                user.set_password(password)
                user.save()
            user.groups.add(group)
            ensure_products()
            ensure_stock_keys()
            added = self._units()
            # Publishes inventory.updated (and low_stock) only for keys whose counts changed.
            refresh_stock(keys=ALL_KEYS, recount=True)
        self.stdout.write(f"bank_admin {'created' if created else 'exists'}; {added} unit(s) added")

    def _units(self) -> int:
        if Unit.objects.filter(din__startswith=FACILITY).exists():
            return 0  # the demo inventory is there already (its units may have moved on since)
        now = timezone.now()
        units = [
            Unit(
                din=demo.din,
                component=demo.component.value,
                product_code=demo.code,
                division=demo.division,
                special_attributes=list(demo.special_attributes),
                antigen_negative=list(demo.antigen_negative),
                irradiated_at=demo.irradiated_at,
                blood_group=demo.blood_group.value,
                volume_ml=demo.volume_ml,
                collected_at=demo.collected_at,
                expires_at=demo.expires_at,
                batch=demo.batch,
                status=UnitStatus.AVAILABLE if demo.expires_at > now else UnitStatus.EXPIRED,
            )
            for demo in demo_units(now)
        ]
        Unit.objects.bulk_create(units)
        UnitStatusChange.objects.bulk_create(
            UnitStatusChange(unit=unit, to_status=unit.status, at=now, by="system:seed_demo", reason="demo inventory")
            for unit in units
        )
        return len(units)
