from django.core.management.base import BaseCommand

from allocation.services import decide_waiting_requests


class Command(BaseCommand):
    help = "Decide waiting requests now (EMERGENCY first); the worker does this every half second."

    def handle(self, *args, **options) -> None:
        self.stdout.write(f"{decide_waiting_requests()} request(s) decided")
