"""The REST contract: tenancy, filters, unread count, marking read, auth, schema."""

import uuid

import pytest
from rest_framework.test import APIClient

from notifications.handlers import HANDLERS
from notifications.models import Notification
from notifications.tests import factories
from notifications.tests.factories import CITY_GENERAL, ST_MARY

pytestmark = pytest.mark.django_db
URL = "/api/v1/notifications/"


def handle(event):
    HANDLERS[event.type](event)
    return event


def test_a_hospital_sees_its_approved_request_by_request_id(stmary_client):
    request_id = handle(factories.requested()).data.request_id
    handle(factories.approved(request_id=request_id))
    results = stmary_client.get(URL).json()["results"]
    approved = [n for n in results if n["kind"] == "REQUEST_APPROVED" and n["request_id"] == str(request_id)]
    assert len(approved) == 1
    assert set(approved[0]) >= {
        "id",
        "audience",
        "kind",
        "severity",
        "title",
        "body",
        "request_id",
        "component",
        "blood_group",
        "source_event_id",
        "source_event_type",
        "created_at",
        "read",
        "read_at",
    }
    assert approved[0]["read"] is False and approved[0]["read_at"] is None
    assert (approved[0]["component"], approved[0]["blood_group"]) == ("RED_CELLS", "O+")


def test_the_list_is_newest_first_and_paginated(stmary_client):
    first = handle(factories.requested()).data.request_id
    second = handle(factories.requested()).data.request_id
    body = stmary_client.get(URL).json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert [n["request_id"] for n in body["results"]] == [str(second), str(first)]


def test_a_decision_consumed_before_its_request_still_lists_above_it(stmary_client):
    request = factories.requested()
    approval = factories.approved(request_id=request.data.request_id)  # decided after the request
    handle(approval)  # but consumed first: the topics are read independently
    handle(request)
    kinds = [n["kind"] for n in stmary_client.get(URL).json()["results"]]
    assert kinds == ["REQUEST_APPROVED", "REQUEST_CREATED"]


def test_each_user_sees_only_its_own_audience(stmary_client, citygeneral_client, bank_client):
    handle(factories.requested(hospital=ST_MARY))
    handle(factories.requested(hospital=CITY_GENERAL))
    handle(factories.inventory_updated(available=4))
    assert {n["audience"] for n in stmary_client.get(URL).json()["results"]} == {ST_MARY.audience}
    assert {n["audience"] for n in citygeneral_client.get(URL).json()["results"]} == {CITY_GENERAL.audience}
    bank = bank_client.get(URL).json()
    assert bank["count"] == 3 and {n["audience"] for n in bank["results"]} == {"bloodbank"}


def test_another_audience_s_notification_is_404_to_read_and_to_mark(stmary_client, citygeneral_client):
    handle(factories.requested(hospital=ST_MARY))
    theirs = Notification.objects.get(audience=ST_MARY.audience)
    assert citygeneral_client.get(f"{URL}{theirs.id}/").status_code == 404
    assert citygeneral_client.post(f"{URL}{theirs.id}/read/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert stmary_client.get(f"{URL}{theirs.id}/").status_code == 200


def test_filters_unread_severity_and_kind(bank_client):
    handle(factories.requested(priority="EMERGENCY"))
    handle(factories.requested(priority="SCHEDULED"))
    handle(factories.low_stock(level="LOW", available=9))
    critical = bank_client.get(URL, {"severity": "CRITICAL"}).json()["results"]
    assert [n["title"].split(":")[0] for n in critical] == ["EMERGENCY request"]
    assert bank_client.get(URL, {"kind": "STOCK_LOW"}).json()["count"] == 1
    Notification.objects.filter(kind="STOCK_LOW").update(read_at=factories.now())
    assert bank_client.get(URL, {"unread": "true"}).json()["count"] == 2
    assert [n["kind"] for n in bank_client.get(URL, {"unread": "false"}).json()["results"]] == ["STOCK_LOW"]
    assert bank_client.get(URL, {"severity": "LOUD"}).status_code == 400


def test_unread_count_mark_read_and_read_all(stmary_client, bank_client):
    handle(factories.requested())
    handle(factories.requested())
    assert stmary_client.get(f"{URL}unread-count/").json() == {"unread": 2}
    one = stmary_client.get(URL).json()["results"][0]
    marked = stmary_client.post(f"{URL}{one['id']}/read/")
    assert marked.status_code == 200 and marked.json()["read"] is True
    assert stmary_client.post(f"{URL}{one['id']}/read/").json()["read_at"] == marked.json()["read_at"]
    assert stmary_client.get(f"{URL}unread-count/").json() == {"unread": 1}
    assert stmary_client.post(f"{URL}read-all/").json() == {"marked_read": 1}
    assert stmary_client.get(f"{URL}unread-count/").json() == {"unread": 0}
    assert bank_client.get(f"{URL}unread-count/").json() == {"unread": 2}


def test_without_credentials_it_is_401_and_without_an_audience_403():
    assert APIClient().get(URL).status_code == 401
    assert APIClient().get(f"{URL}unread-count/").status_code == 401
    stranger = APIClient()
    stranger.force_authenticate(factories.UserFactory())
    assert stranger.get(URL).status_code == 403
    assert stranger.post(f"{URL}read-all/").status_code == 403


def test_an_unknown_or_malformed_id_is_404(stmary_client):
    assert stmary_client.post(f"{URL}{uuid.uuid4()}/read/").status_code == 404
    assert stmary_client.post(f"{URL}{'-' * 36}/read/").status_code == 404
    assert stmary_client.get(f"{URL}{'-' * 36}/").status_code == 404


def test_token_login_and_the_documented_endpoints(db):
    factories.hospital_user(ST_MARY)
    client = APIClient()
    token = client.post(
        "/api/v1/auth/token/", {"username": ST_MARY.username, "password": "pw-for-tests"}, format="json"
    ).json()
    assert "token" in token
    client.credentials(HTTP_AUTHORIZATION=f"Token {token['token']}")
    assert client.get(URL).status_code == 200
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/v1/notifications/unread-count/" in schema.content
    assert b"/api/v1/notifications/stream/" in schema.content
    assert client.get("/api/docs/").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
