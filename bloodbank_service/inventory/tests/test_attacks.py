"""Issue 17's attacks on the bank, repeated: each test fails if the attack works again.

(The login code is shared by every service and is attacked in full in the hospital's
``hospitals/tests/test_attacks.py``; here the bank's own doors: its superuser's admin login
and DRF's login page. The unit-receipt attacks are in ``test_api.py``.)
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db
PASSWORD = "pw-123456"


@pytest.mark.parametrize("login_page", ["/admin/login/", "/accounts/login/"])
def test_guessing_the_bank_superusers_password_locks_the_account_out(settings, login_page):
    settings.AXES_FAILURE_LIMIT = 5
    get_user_model().objects.create_superuser(username="bank_admin", password=PASSWORD)
    answers = [
        Client().post(login_page, {"username": "bank_admin", "password": f"guess-{n}"}).status_code for n in range(30)
    ]
    assert answers == [200] * 4 + [429] * 26
    right = Client().post(login_page, {"username": "bank_admin", "password": PASSWORD})
    assert right.status_code == 429 and "_auth_user_id" not in right.wsgi_request.session
