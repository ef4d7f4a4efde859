"""The live feed for real: uvicorn serving the ASGI app against the test database, read over HTTP."""

from __future__ import annotations

import http.client
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from notifications.handlers import HANDLERS
from notifications.models import FeedSequence, Notification
from notifications.tests import factories
from notifications.tests.factories import CITY_GENERAL, ST_MARY
from shared_events.kafka_server import free_port
from shared_events.testing import token_for, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
SERVICE_DIR = Path(__file__).resolve().parents[2]
STREAM = "/api/v1/notifications/stream/"
LIFETIME = 8.0
STREAMS_PER_USER = 6
REVOKE_CHECK = 0.5
OPENINGS_AT_ONCE = 2


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker) -> Iterator[tuple[str, int]]:
    """``uvicorn config.asgi:application`` on a free port, using the test database."""
    yield from _uvicorn(django_db_blocker, poll_seconds=0.1)


@pytest.fixture(scope="module")
def slow_poll_server(django_db_setup, django_db_blocker) -> Iterator[tuple[str, int]]:
    """The same, polling only every 60 s: what reaches a stream sooner was woken by the commit's NOTIFY."""
    yield from _uvicorn(django_db_blocker, poll_seconds=60)


def _uvicorn(django_db_blocker, *, poll_seconds: float) -> Iterator[tuple[str, int]]:
    with django_db_blocker.unblock():
        db = connection.settings_dict
        database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    port = free_port()
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": settings.SECRET_KEY,  # the same key: sessions signed here are valid there
        "DATABASE_URL": database_url,
        "NOTIFICATION_STREAM_POLL_SECONDS": str(poll_seconds),
        "NOTIFICATION_STREAM_HEARTBEAT_SECONDS": "0.5",
        "NOTIFICATION_STREAM_MAX_SECONDS": str(LIFETIME),
        "NOTIFICATION_STREAM_RETRY_MS": "1500",
        "NOTIFICATION_STREAMS_PER_USER": str(STREAMS_PER_USER),
        "NOTIFICATION_STREAM_REVOKE_CHECK_SECONDS": str(REVOKE_CHECK),
        "NOTIFICATION_STREAM_OPENINGS_AT_ONCE": str(OPENINGS_AT_ONCE),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--port",
            str(port),
            "--timeout-graceful-shutdown",
            "1",
        ],
        cwd=SERVICE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _healthy(port) or process.poll() is not None, timeout=30, message="uvicorn to serve /healthz")
        assert process.poll() is None, "uvicorn exited at start"
        yield ("127.0.0.1", port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(autouse=True)
def feed_continues_across_tests(transactional_db) -> None:
    """A real feed sequence never restarts; the flush between transactional tests would restart it.

    Without this, the server's poller (still positioned after the previous test's
    notifications) would wait for positions the next test never reaches.
    """
    FeedSequence.objects.update_or_create(name="notifications", defaults={"value": time.time_ns() // 1000})


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@dataclass
class SseClient:
    """A minimal EventSource: parses ``id``/``event``/``data`` frames and comments on a reader thread."""

    status: int
    headers: dict[str, str]
    events: queue.Queue = field(default_factory=queue.Queue)
    comments: list[str] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)
    _conn: http.client.HTTPConnection | None = None

    @classmethod
    def connect(cls, server: tuple[str, int], path: str = STREAM, headers: dict[str, str] | None = None) -> SseClient:
        conn = http.client.HTTPConnection(*server, timeout=30)
        conn.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
        response = conn.getresponse()
        client = cls(status=response.status, headers={k.lower(): v for k, v in response.getheaders()}, _conn=conn)
        if response.status == 200:
            threading.Thread(target=client._read, args=(response,), daemon=True).start()
        else:
            response.read()
            conn.close()
            client.ended.set()
        return client

    def _read(self, response: http.client.HTTPResponse) -> None:
        frame: dict[str, str] = {}
        try:
            while line := response.readline():
                text = line.decode().rstrip("\n")
                if not text:
                    if "data" in frame:
                        self.events.put(frame)
                    frame = {}
                elif text.startswith(":"):
                    self.comments.append(text[1:].strip())
                else:
                    name, _, value = text.partition(":")
                    frame[name] = value.removeprefix(" ")
        except (OSError, http.client.HTTPException):
            pass  # the test closed the connection

        finally:
            self.ended.set()

    def next_event(self, timeout: float = 10.0) -> dict:
        try:
            frame = self.events.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no event on the stream within {timeout}s")
        return frame | {"notification": json.loads(frame["data"])}

    def wait_until_streaming(self) -> None:
        wait_for(lambda: any(c.startswith("connected") for c in self.comments), timeout=10, message="stream opened")

    def close(self) -> None:
        """Hang up like a browser tab closing: the reader sees the end, then the connection is closed."""
        if self._conn is None:
            return
        if self._conn.sock is not None:
            self._conn.sock.shutdown(socket.SHUT_RDWR)
        self.ended.wait(timeout=5)
        self._conn.close()


def _token_for(hospital) -> str:
    return token_for(factories.hospital_user(hospital))


def _notify(event) -> None:
    HANDLERS[event.type](event)


def test_a_connected_client_receives_a_new_notification_of_its_audience_only(server):
    token = _token_for(ST_MARY)
    client = SseClient.connect(server, headers={"Authorization": f"Token {token}"})
    try:
        assert client.status == 200
        assert client.headers["content-type"].startswith("text/event-stream")
        client.wait_until_streaming()
        _notify(factories.requested(hospital=CITY_GENERAL))  # another hospital's: never on this stream
        request_id = factories.requested(hospital=ST_MARY)
        _notify(request_id)
        frame = client.next_event()
        stored = Notification.objects.get(audience=ST_MARY.audience, source_event_id=request_id.id)
        assert frame["event"] == "notification"
        assert frame["id"] == str(stored.feed_seq)
        assert frame["notification"]["id"] == str(stored.id)
        assert frame["notification"]["kind"] == "REQUEST_CREATED"
        assert frame["notification"]["request_id"] == str(request_id.data.request_id)
        assert client.events.empty()
    finally:
        client.close()


def test_a_committed_notification_reaches_the_stream_at_once_not_at_the_next_poll(slow_poll_server):
    client = SseClient.connect(slow_poll_server, headers={"Authorization": f"Token {_token_for(ST_MARY)}"})
    try:
        client.wait_until_streaming()
        _notify(event := factories.requested(hospital=ST_MARY))
        # The hub polls every 60 s here: only the commit's NOTIFY can bring it within 10.
        assert client.next_event(timeout=10)["notification"]["source_event_id"] == str(event.id)
    finally:
        client.close()


def test_a_client_reconnecting_with_last_event_id_gets_only_what_it_missed(server):
    auth = {"Authorization": f"Token {_token_for(ST_MARY)}"}
    first = SseClient.connect(server, headers=auth)
    try:
        first.wait_until_streaming()
        _notify(factories.requested())
        seen = first.next_event()
    finally:
        first.close()
    missed = [factories.requested(), factories.requested()]
    for event in missed:
        _notify(event)  # while disconnected

    again = SseClient.connect(server, headers=auth | {"Last-Event-ID": seen["id"]})
    try:
        frames = [again.next_event(), again.next_event()]
        assert [f["notification"]["source_event_id"] for f in frames] == [str(e.id) for e in missed]
        assert int(frames[0]["id"]) > int(seen["id"])
        assert int(frames[1]["id"]) > int(frames[0]["id"])
        _notify(later := factories.requested())
        assert again.next_event()["notification"]["source_event_id"] == str(later.id)
    finally:
        again.close()


def test_a_coalesced_stock_update_is_sent_again_with_the_new_count(server):
    client = SseClient.connect(server, headers={"Authorization": f"Token {token_for(factories.bank_user())}"})
    try:
        client.wait_until_streaming()
        _notify(factories.inventory_updated(available=12))
        first = client.next_event()
        _notify(factories.inventory_updated(available=11))
        second = client.next_event()
        assert second["notification"]["id"] == first["notification"]["id"]
        assert second["notification"]["title"].endswith("11 units available")
        assert int(second["id"]) > int(first["id"])
    finally:
        client.close()


def _ticket(token: str) -> str:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.post("/api/v1/notifications/stream-ticket/")
    assert response.status_code == 201, response.content
    return response.json()["ticket"]


def test_the_stream_takes_a_single_use_ticket_in_the_query_never_a_token_and_refuses_strangers(server):
    token = _token_for(ST_MARY)
    assert SseClient.connect(server).status == 401
    assert SseClient.connect(server, headers={"Authorization": "Token wrong"}).status == 401
    assert SseClient.connect(server, f"{STREAM}?ticket=wrong").status == 401
    assert SseClient.connect(server, f"{STREAM}?token={token}").status == 401  # a token never goes in a URL
    no_audience = token_for(factories.UserFactory())
    assert SseClient.connect(server, headers={"Authorization": f"Token {no_audience}"}).status == 403
    assert SseClient.connect(server, f"{STREAM}?last_event_id=abc&ticket={_ticket(token)}").status == 400
    ticket = _ticket(token)
    client = SseClient.connect(server, f"{STREAM}?ticket={ticket}")
    try:
        assert client.status == 200
        client.wait_until_streaming()
        assert SseClient.connect(server, f"{STREAM}?ticket={ticket}").status == 401  # used once already
    finally:
        client.close()


def _as(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_logging_out_everywhere_ends_the_users_open_streams_and_unused_tickets_and_only_theirs(server):
    user = factories.hospital_user(ST_MARY)
    stolen, own = token_for(user), token_for(user)
    by_token = SseClient.connect(server, headers={"Authorization": f"Token {stolen}"})
    by_ticket = SseClient.connect(server, f"{STREAM}?ticket={_ticket(stolen)}")
    unused_ticket = _ticket(stolen)
    colleague = SseClient.connect(server, headers={"Authorization": f"Token {_token_for(CITY_GENERAL)}"})
    try:
        for client in (by_token, by_ticket, colleague):
            assert client.status == 200
            client.wait_until_streaming()
        assert _as(own).post("/api/v1/auth/logout-all/").status_code == 204
        for client in (by_token, by_ticket):  # well before the stream's lifetime (LIFETIME) ends it
            wait_for(client.ended.is_set, timeout=REVOKE_CHECK + 3, message="a revoked stream to end")
            assert any("were revoked" in c for c in client.comments)
        assert SseClient.connect(server, f"{STREAM}?ticket={unused_ticket}").status == 401
        assert SseClient.connect(server, headers={"Authorization": f"Token {stolen}"}).status == 401
        assert not colleague.ended.is_set()
        _notify(event := factories.requested(hospital=CITY_GENERAL))
        assert colleague.next_event()["notification"]["source_event_id"] == str(event.id)
    finally:
        for client in (by_token, by_ticket, colleague):
            client.close()


def test_a_new_password_ends_the_users_open_streams(server):
    user = factories.hospital_user(ST_MARY)
    client = SseClient.connect(server, f"{STREAM}?ticket={_ticket(token_for(user))}")
    try:
        assert client.status == 200
        client.wait_until_streaming()
        user.set_password("a-new-password-for-tests")
        user.save()
        wait_for(client.ended.is_set, timeout=REVOKE_CHECK + 3, message="the stream to end after a new password")
        assert any("were revoked" in c for c in client.comments)
    finally:
        client.close()


def _other_database_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_open_streams_share_one_database_poller_and_hold_no_connection_each(server):
    auth = {"Authorization": f"Token {_token_for(ST_MARY)}"}
    clients = [SseClient.connect(server, headers=auth) for _ in range(STREAMS_PER_USER)]
    try:
        for client in clients:
            client.wait_until_streaming()
        _notify(event := factories.requested())
        for client in clients:
            assert client.next_event()["notification"]["source_event_id"] == str(event.id)
        # The poller's connection and the one it LISTENs on, whatever the number of streams.
        wait_for(lambda: _other_database_connections() <= 2, timeout=10, message="two connections for six streams")
    finally:
        for client in clients:
            client.close()


def test_a_burst_of_streams_opening_together_takes_a_few_database_connections_and_every_stream_opens(server):
    """Every dashboard reconnecting at once (after a deploy): each opening authenticates on a thread of its own
    with a connection of its own, so without a limit 200 of them took more connections than PostgreSQL allows
    and got 500s, which an EventSource does not retry."""
    users = [factories.recipient_user(ST_MARY.audience, username=f"burst-{n}") for n in range(8)]
    tokens = [token_for(user) for user in users]
    clients: list[SseClient] = []
    lock = threading.Lock()

    def connect(token: str) -> None:
        client = SseClient.connect(server, headers={"Authorization": f"Token {token}"})
        with lock:
            clients.append(client)

    threads = [threading.Thread(target=connect, args=(t,)) for t in tokens for _ in range(STREAMS_PER_USER)]
    most = 0
    try:
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            most = max(most, _other_database_connections())
        assert sorted(client.status for client in clients) == [200] * len(threads)
        # The openings in turn, and the feed's poller and its LISTEN; an opening's connection, closed, is still
        # listed until its server process has exited, so each slot may show two for a moment (without the limit:
        # dozens).
        assert most <= 2 * OPENINGS_AT_ONCE + 2, f"{most} database connections while {len(threads)} streams opened"
    finally:
        for thread in threads:
            thread.join(timeout=30)
        for client in clients:
            client.close()


def test_a_user_gets_429_beyond_its_open_streams_until_one_closes(server):
    auth = {"Authorization": f"Token {_token_for(ST_MARY)}"}
    clients = [SseClient.connect(server, headers=auth) for _ in range(STREAMS_PER_USER)]
    try:
        assert [client.status for client in clients] == [200] * STREAMS_PER_USER
        assert SseClient.connect(server, headers=auth).status == 429  # counted across every process
        other_user = SseClient.connect(server, headers={"Authorization": f"Token {_token_for(CITY_GENERAL)}"})
        assert other_user.status == 200
        other_user.close()
        clients.pop().close()

        def one_more() -> SseClient | None:
            client = SseClient.connect(server, headers=auth)
            return client if client.status == 200 else None

        clients.append(wait_for(one_more, timeout=10, interval=0.2, message="a stream slot freed by a close"))
    finally:
        for client in clients:
            client.close()


def test_a_last_event_id_beyond_the_newest_notification_is_refused(server):
    auth = {"Authorization": f"Token {_token_for(ST_MARY)}"}
    _notify(factories.requested())
    newest = Notification.objects.order_by("-feed_seq").first().feed_seq
    assert SseClient.connect(server, headers=auth | {"Last-Event-ID": str(newest + 1)}).status == 400
    assert SseClient.connect(server, headers=auth | {"Last-Event-ID": "9" * 40}).status == 400
    assert SseClient.connect(server, headers=auth | {"Last-Event-ID": "-1"}).status == 400
    client = SseClient.connect(server, headers=auth | {"Last-Event-ID": str(newest)})
    try:
        assert client.status == 200
    finally:
        client.close()


def test_a_browser_session_cookie_authenticates_a_same_origin_event_source(server):
    browser = Client()
    browser.force_login(factories.hospital_user(ST_MARY))
    cookie = f"sessionid={browser.cookies['sessionid'].value}"
    client = SseClient.connect(server, headers={"Cookie": cookie})
    try:
        assert client.status == 200
        client.wait_until_streaming()
        _notify(event := factories.requested())
        assert client.next_event()["notification"]["source_event_id"] == str(event.id)
    finally:
        client.close()


def test_the_stream_sends_heartbeats_and_ends_after_its_lifetime_advising_a_retry(server):
    client = SseClient.connect(server, headers={"Authorization": f"Token {_token_for(CITY_GENERAL)}"})
    started = time.monotonic()
    try:
        wait_for(client.ended.is_set, timeout=LIFETIME + 10, message="the stream to end after its lifetime")
        assert time.monotonic() - started >= LIFETIME - 1
        assert "keep-alive" in client.comments
        assert any(c.startswith("stream ends here") for c in client.comments)
    finally:
        client.close()
