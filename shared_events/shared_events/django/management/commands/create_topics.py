from django.core.management.base import BaseCommand

from shared_events.admin import create_topics


class Command(BaseCommand):
    help = "Create every topic of the registry that does not exist yet (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--replication-factor",
            type=int,
            default=None,
            help="default: KAFKA_REPLICATION_FACTOR, else the brokers' default.replication.factor",
        )
        parser.add_argument("--timeout", type=float, default=30.0)

    def handle(self, *args, **options):
        outcome = create_topics(replication_factor=options["replication_factor"], timeout=options["timeout"])
        for name, state in sorted(outcome.items()):
            self.stdout.write(f"{state:8} {name}")
