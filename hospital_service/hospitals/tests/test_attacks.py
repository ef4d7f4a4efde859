"""The attacks of issue 17 on logins and tokens, repeated: each test fails if the attack works again.

Every login of every service goes through the same code (``shared_events.django.auth`` and
django-axes), so these run here, on the service that has all three login doors: the token
endpoint, ``/admin/login/`` and the dashboard's ``/accounts/login/``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.test import APIClient
from testing_support.factories import UserFactory

from shared_events.django.auth import client_ip

pytestmark = pytest.mark.django_db
TOKEN = "/api/v1/auth/token/"
RIGHT = "pw-for-tests"
LIMIT = 5


@pytest.fixture(autouse=True)
def lockout_after_five_failures(settings):
    """Production's lockout, with a limit a test reaches quickly (production: LOGIN_FAILURE_LIMIT, 10)."""
    settings.AXES_FAILURE_LIMIT = LIMIT


def _token_login(username: str, password: str, **client_kwargs: str) -> int:
    return APIClient(**client_kwargs).post(TOKEN, {"username": username, "password": password}).status_code


def test_a_made_up_x_forwarded_for_does_not_dodge_the_token_logins_lockout(staff):
    answers = [_token_login(staff.username, f"guess-{n}", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}") for n in range(20)]
    assert answers == [400] * (LIMIT - 1) + [429] * (21 - LIMIT)
    assert _token_login(staff.username, RIGHT, HTTP_X_FORWARDED_FOR="198.51.100.99") == 429


def test_a_made_up_x_forwarded_for_does_not_dodge_the_token_logins_rate_limit(settings, staff):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"login": "3/minute"}}
    answers = [_token_login(staff.username, RIGHT, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}") for n in range(4)]
    assert answers == [200, 200, 200, 429]


def test_one_account_guessed_from_many_addresses_is_locked_out_even_for_the_right_password(staff):
    answers = [_token_login(staff.username, f"guess-{n}", REMOTE_ADDR=f"203.0.113.{n}") for n in range(LIMIT)]
    assert answers == [400] * (LIMIT - 1) + [429]
    assert _token_login(staff.username, RIGHT, REMOTE_ADDR="203.0.113.200") == 429
    UserFactory(username="colleague")
    assert _token_login("colleague", RIGHT, REMOTE_ADDR="203.0.113.200") == 200  # only that account


def test_many_accounts_guessed_from_one_address_lock_that_address_out(staff):
    answers = [_token_login(f"user-{n}", "guess", REMOTE_ADDR="203.0.113.7") for n in range(LIMIT)]
    assert answers == [400] * (LIMIT - 1) + [429]
    assert _token_login(staff.username, RIGHT, REMOTE_ADDR="203.0.113.7") == 429
    assert _token_login(staff.username, RIGHT, REMOTE_ADDR="203.0.113.8") == 200  # only that address


@pytest.mark.parametrize("login_page", ["/admin/login/", "/accounts/login/"])
def test_form_logins_lock_out_a_guessed_account_even_for_the_superuser(login_page):
    admin = UserFactory(username="bank_admin", is_staff=True, is_superuser=True)
    answers = [
        Client(HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").post(
            login_page, {"username": admin.username, "password": f"guess-{n}"}
        )
        for n in range(30)
    ]
    assert [a.status_code for a in answers] == [200] * (LIMIT - 1) + [429] * (31 - LIMIT)
    assert "Too many failed logins" in answers[-1].content.decode()
    right = Client().post(login_page, {"username": admin.username, "password": RIGHT})
    assert right.status_code == 429 and "_auth_user_id" not in right.wsgi_request.session


def test_the_lockout_ends_after_the_cool_off(settings, staff):
    answers = [_token_login(staff.username, f"guess-{n}") for n in range(LIMIT)]
    assert answers == [400] * (LIMIT - 1) + [429]  # the failure that reaches the limit locks at once
    assert _token_login(staff.username, RIGHT) == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))  # the 15 minutes passed
    assert _token_login(staff.username, RIGHT) == 200


def test_x_forwarded_for_is_read_only_behind_trusted_proxies_and_then_only_the_proxys_own_entry(rf, settings):
    forged = rf.get("/", HTTP_X_FORWARDED_FOR="10.9.9.9", REMOTE_ADDR="192.0.2.1")
    assert client_ip(forged) == "192.0.2.1"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    # Caddy replaces the header; a proxy that appends would leave the forged entry first: never believed.
    through_proxy = rf.get("/", HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.50", REMOTE_ADDR="172.18.0.5")
    assert client_ip(through_proxy) == "203.0.113.50"


# ------------------------------------------------------------------ tokens


def _login(user) -> dict:
    response = APIClient().post(TOKEN, {"username": user.username, "password": RIGHT}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def _as(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def _works(token: str) -> bool:
    status = _as(token).get("/api/v1/blood-requests/").status_code
    assert status in {200, 401}
    return status == 200


def test_tokens_are_new_at_each_login_expire_and_are_stored_only_as_digests(staff):
    first, second = _login(staff), _login(staff)
    assert first["token"] != second["token"]
    expiry = timezone.datetime.fromisoformat(first["expiry"])
    assert timedelta(hours=9, minutes=59) < expiry - timezone.now() <= timedelta(hours=10)
    stored = list(AuthToken.objects.values_list("digest", "token_key"))
    assert len(stored) == 2
    for digest, key in stored:
        assert first["token"] not in (digest, key) and second["token"] not in (digest, key)
        assert len(digest) == 128  # SHA-512
    AuthToken.objects.update(expiry=timezone.now() - timedelta(seconds=1))
    assert not _works(first["token"]) and not _works(second["token"])


def test_an_expired_token_is_refused_and_deleted_and_the_next_login_sweeps_the_users_other_expired_ones(staff):
    first, second, third = (_login(staff)["token"] for _ in range(3))
    AuthToken.objects.filter(digest__in=[hash_token(first), hash_token(second)]).update(
        expiry=timezone.now() - timedelta(seconds=1)
    )
    with CaptureQueriesContext(connection) as queries:
        assert _works(third)  # a valid token's call does not read the user's other tokens
    # The token lookup (hospitals.token_auth) is prepared on the server: it shows as EXECUTE; the list's are not.
    token_reads = [q["sql"] for q in queries.captured_queries if "knox_authtoken" in q["sql"] or "EXECUTE" in q["sql"]]
    assert len(token_reads) == 1, token_reads
    assert not _works(first)
    assert not AuthToken.objects.filter(digest=hash_token(first)).exists()  # refused and deleted
    assert AuthToken.objects.filter(digest=hash_token(second)).exists()  # not used since: still there
    _login(staff)
    assert not AuthToken.objects.filter(digest=hash_token(second)).exists()  # swept at the next login
    assert _works(third)


def test_logout_revokes_the_token_and_logout_all_every_token_of_the_user(staff):
    first, second, third = (_login(staff)["token"] for _ in range(3))
    assert _as(first).post("/api/v1/auth/logout/").status_code == 204
    assert not _works(first) and _works(second)
    assert _as(second).post("/api/v1/auth/logout-all/").status_code == 204
    assert not _works(second) and not _works(third)


def test_logout_all_also_ends_every_browser_session_of_the_user_and_only_theirs(staff, other_staff):
    """A stolen dashboard cookie dies with "log out everywhere" too, not only the API tokens."""
    ward_pc, laptop, colleague = Client(), Client(), Client()
    for browser, user in ((ward_pc, staff), (laptop, staff), (colleague, other_staff)):
        assert browser.post("/accounts/login/", {"username": user.username, "password": RIGHT}).status_code == 302
        assert browser.get("/dashboard/state/").status_code == 200
    assert _as(_login(staff)["token"]).post("/api/v1/auth/logout-all/").status_code == 204
    for browser in (ward_pc, laptop):
        assert browser.get("/dashboard/state/").status_code == 302  # to the login page
        assert browser.get("/api/v1/blood-requests/").status_code in {401, 403}
    assert colleague.get("/dashboard/state/").status_code == 200


def test_a_password_change_revokes_every_token_of_the_user_and_only_theirs(staff, other_staff):
    token, others = _login(staff)["token"], _login(other_staff)["token"]
    staff.set_password("a-new-password-for-tests")
    staff.save()
    assert not _works(token)
    assert _works(others)
    staff.last_login = timezone.now()
    staff.save()  # saving the user without a new password revokes nothing
    assert _works(_login_with(staff, "a-new-password-for-tests"))


def _login_with(user, password: str) -> str:
    response = APIClient().post(TOKEN, {"username": user.username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    user.last_login = timezone.now()
    user.save()
    return token
