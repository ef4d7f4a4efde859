"""Write .env for docker compose from .env.example, every "change-me" replaced by a random secret.

``make up`` runs it when .env does not exist: ``python scripts/make_env.py .env.example .env``.
An existing target is never overwritten (rotating secrets is a deliberate step: docs/runbook.md).
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

PLACEHOLDER = "change-me"


def fill(template: str) -> str:
    lines = []
    for line in template.splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#") and value.strip() == PLACEHOLDER:
            line = f"{name}={secrets.token_urlsafe(32)}"  # URL-safe: it goes into DATABASE_URL
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(template: Path, target: Path) -> int:
    if target.exists():
        print(f"{target} exists: left as it is", file=sys.stderr)
        return 1
    target.write_text(fill(template.read_text()))
    target.chmod(0o600)
    print(f"wrote {target} with random secrets (see {template}); the demo logins' password is DEMO_PASSWORD there")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
