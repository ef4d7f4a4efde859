"""The container health check (``python -m shared_events.healthcheck``) against a real HTTP server."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared_events.kafka_server import free_port


class _Server(ThreadingHTTPServer):
    status = 200
    seen: list[dict[str, str]]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        self.send_response(self.server.status)
        self.end_headers()
        self.wfile.write(b'{"status": "..."}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.seen = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _healthcheck(port: int, *args: str, allowed_hosts: str = "localhost") -> int:
    env = {"PATH": "/usr/bin:/bin", "PORT": str(port), "ALLOWED_HOSTS": allowed_hosts}
    return subprocess.run(
        [sys.executable, "-m", "shared_events.healthcheck", *args], env=env, capture_output=True, timeout=30
    ).returncode


def test_a_ready_process_is_healthy_and_asked_as_through_the_proxy(server):
    assert _healthcheck(server.server_address[1], allowed_hosts=" .blood.example.org, 127.0.0.1") == 0
    assert server.seen == [
        server.seen[0] | {"path": "/readyz", "host": "blood.example.org", "x-forwarded-proto": "https"}
    ]


def test_a_process_that_is_not_ready_is_unhealthy(server):
    server.status = 503
    assert _healthcheck(server.server_address[1]) == 1


def test_another_path_can_be_checked(server):
    assert _healthcheck(server.server_address[1], "/healthz", allowed_hosts="*") == 0
    assert (server.seen[0]["path"], server.seen[0]["host"]) == ("/healthz", "localhost")


def test_nothing_listening_is_unhealthy():
    assert _healthcheck(free_port()) == 1
