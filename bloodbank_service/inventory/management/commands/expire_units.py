from django.core.management.base import BaseCommand

from inventory.services import expire_units


class Command(BaseCommand):
    help = "Move AVAILABLE units past their expiry to EXPIRED and publish the stock change."

    def handle(self, *args, **options) -> None:
        count = expire_units()
        self.stdout.write(f"{count} unit(s) expired")
