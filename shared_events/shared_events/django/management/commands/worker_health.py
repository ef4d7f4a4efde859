"""``manage.py worker_health``: exit 0 when the worker's heartbeat is fresh, 1 otherwise (a health check)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from shared_events.django.heartbeat import check, heartbeat_path


class Command(BaseCommand):
    help = "Exit 0 if the worker wrote its heartbeat file recently, 1 (with the reason) otherwise."

    requires_system_checks: list[str] = []  # a health check must be quick and must not need the database

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", type=Path, default=None, help="default: WORKER_HEARTBEAT_FILE")
        parser.add_argument(
            "--max-age", type=float, default=None, help="seconds (default: WORKER_HEARTBEAT_MAX_AGE, 30)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"] or heartbeat_path()
        max_age = options["max_age"] if options["max_age"] is not None else settings.WORKER_HEARTBEAT_MAX_AGE
        healthy, why = check(path, max_age)
        if not healthy:
            raise CommandError(f"worker unhealthy: {why}", returncode=1)
        self.stdout.write(f"worker healthy: {why}")
