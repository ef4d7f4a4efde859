"""The hospital's token check (hospitals.token_auth): knox's answers, the user's hospital read in the same query."""

from __future__ import annotations

import pytest
from testing_support.factories import UserFactory

from hospitals.models import StaffMembership
from shared_events.access_probe import token_client

pytestmark = pytest.mark.django_db
URL = "/api/v1/bank-stock/"  # a hospital-scoped list whose own work is one count and one page query


def test_a_staff_token_call_reads_token_user_and_hospital_in_one_statement(staff, django_assert_num_queries):
    client = token_client(staff.username, "pw-for-tests")

    with django_assert_num_queries(2):  # the token with its user and hospital; the page's count (no rows)
        assert client.get(URL).status_code == 200


def test_a_token_of_a_user_no_longer_staff_is_403_on_the_next_call(staff):
    client = token_client(staff.username, "pw-for-tests")
    assert client.get(URL).status_code == 200

    StaffMembership.objects.filter(user=staff).delete()

    assert client.get(URL).status_code == 403


def test_a_token_of_a_user_who_is_nobody_s_staff_is_403():
    UserFactory(username="visitor")
    assert token_client("visitor", "pw-for-tests").get(URL).status_code == 403
