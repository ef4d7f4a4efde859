from django.core.management.base import BaseCommand, CommandError

from shared_events.access import PRINCIPALS, apply_access, password_variable, passwords_from_env


class Command(BaseCommand):
    help = (
        "Give each service (and KafkaDrop) its SCRAM login and the ACLs the topic registry derives "
        "(idempotent). Run as the brokers' admin; passwords come from <PRINCIPAL>_KAFKA_PASSWORD."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--principal",
            action="append",
            choices=PRINCIPALS,
            help="set only this principal's password (repeatable; default: all of "
            + ", ".join(password_variable(p) for p in PRINCIPALS)
            + "); the ACLs are always applied in full",
        )
        parser.add_argument(
            "--prune", action="store_true", help="also delete these principals' ACLs the registry no longer derives"
        )
        parser.add_argument("--timeout", type=float, default=30.0)

    def handle(self, *args, **options):
        try:
            passwords = passwords_from_env(options["principal"] or PRINCIPALS)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        outcome = apply_access(passwords, prune=options["prune"], timeout=options["timeout"])
        self.stdout.write(f"passwords set for {', '.join(sorted(passwords))}")
        self.stdout.write(f"{len(outcome['created'])} ACLs in place, {len(outcome['deleted'])} stale ones deleted")
        for binding in outcome["deleted"]:
            self.stdout.write(f"deleted  {binding}")
