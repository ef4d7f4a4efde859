"""Run a service's ``manage.py`` command in a bare environment (only what the caller passes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manage(service: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT / f"{service}_service",
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )
