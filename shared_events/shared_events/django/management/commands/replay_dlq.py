from django.core.management.base import BaseCommand

from shared_events.django.config import service_events
from shared_events.django.dlq import read_dead_letters, replay_dead_letters


class Command(BaseCommand):
    help = "List this service's dead letters (--list) or replay them through its handlers."

    def add_arguments(self, parser):
        parser.add_argument("--list", action="store_true", help="print dead letters without replaying")
        parser.add_argument("--idle-timeout", type=float, default=3.0)

    def handle(self, *args, **options):
        if options["list"]:
            group = f"{service_events().consumer_group}-dlq-list"
            for msg in read_dead_letters(group_id=group, idle_timeout=options["idle_timeout"], commit=False):
                headers = {k: v.decode(errors="replace") for k, v in (msg.headers() or [])}
                self.stdout.write(f"offset={msg.offset()} key={msg.key()!r} {headers}")
            return
        handled, again = replay_dead_letters(idle_timeout=options["idle_timeout"])
        self.stdout.write(f"replayed: {handled} handled, {again} dead-lettered again")
