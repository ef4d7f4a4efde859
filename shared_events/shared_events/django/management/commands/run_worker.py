from django.core.management.base import BaseCommand

from shared_events.django.worker import run_worker


class Command(BaseCommand):
    help = "Run this service's Kafka consumer loop and outbox relay until SIGTERM/SIGINT."

    def add_arguments(self, parser):
        parser.add_argument("--no-relay", action="store_true", help="consume only (another worker relays)")
        parser.add_argument("--relay-only", action="store_true", help="publish the outbox only")

    def handle(self, *args, **options):
        run_worker(relay=not options["no_relay"], consume=not options["relay_only"])
