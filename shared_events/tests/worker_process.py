"""A real ``manage.py run_worker`` process of the test project, for tests that kill or stop one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.db import connection

PROJECT = Path(__file__).resolve().parent.parent


class WorkerProcess:
    """Its output goes to a file: a pipe nobody reads while it runs could fill and block it."""

    def __init__(self, env_extra: dict[str, str], log: Path) -> None:
        db = connection.settings_dict
        env = (
            os.environ
            | {
                "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
                "PYTHONUNBUFFERED": "1",
            }
            | env_extra
        )
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "run_worker"], cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def output(self) -> str:
        return self.log.read_text()

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, and its exit code once it has shut down."""
        self.process.terminate()
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """Never leave a worker behind: it would hold the relay's lock for the tests after this one."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
