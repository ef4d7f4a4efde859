"""Container health check of a web process: ``python -m shared_events.healthcheck [PATH]``.

Asks ``http://127.0.0.1:$PORT/readyz`` (or PATH) the way a request through the proxy arrives:
``Host`` is the first of ``ALLOWED_HOSTS`` and ``X-Forwarded-Proto: https``, so neither the
host check nor ``HTTPS=1``'s redirect turns a ready process into a failed check. Exits 0 on
200, 1 otherwise. Standard library only: it runs every few seconds in every container.
"""

from __future__ import annotations

import http.client
import os
import sys


def probe_host() -> str:
    for host in os.environ.get("ALLOWED_HOSTS", "localhost").split(","):
        host = host.strip().lstrip(".")  # ".example.org" also allows "example.org"
        if host and "*" not in host:
            return host
    return "localhost"


def check(path: str = "/readyz", *, timeout: float = 4.0) -> tuple[bool, str]:
    port = int(os.environ.get("PORT") or 8000)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": probe_host(), "X-Forwarded-Proto": "https"})
        response = connection.getresponse()
        return response.status == 200, f"{path}: {response.status} {response.read(200).decode(errors='replace')}"
    except OSError as exc:
        return False, f"{path}: {exc}"
    finally:
        connection.close()


def main(argv: list[str]) -> int:
    healthy, detail = check(argv[0] if argv else "/readyz")
    print(detail, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
