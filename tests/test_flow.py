"""The whole request flow, end to end, over the real processes, broker and PostgreSQL."""

from __future__ import annotations

import os
import re
import urllib.request
from pathlib import Path

from api_client import ApiClient

from shared_events import topics
from shared_events.testing import metric_value, wait_for

DEADLINE = 60


def _emergency(units: int = 2, group: str = "O+") -> dict:
    return {
        "blood_group": group,
        "component": "RED_CELLS",
        "units": units,
        "priority": "EMERGENCY",
        "patient_reference": "MRN-4411",
        "reason": "trauma bay 2",
    }


def _decided(client: ApiClient, request_id: str) -> dict | None:
    body = client.get(f"/api/v1/blood-requests/{request_id}/").body
    return body if body["status"] != "PENDING" else None


def _notification(client: ApiClient, request_id: str, kind: str) -> dict | None:
    page = client.get("/api/v1/notifications/").body
    return next((n for n in page["results"] if n.get("request_id") == request_id and n["kind"] == kind), None)


def test_an_emergency_request_is_approved_and_the_hospital_is_notified(stack, stmary):
    created = stmary.post("/api/v1/blood-requests/", _emergency())
    assert created.status == 201, created.body
    assert created.body["status"] == "PENDING"
    request_id = created.body["id"]

    decided = wait_for(lambda: _decided(stmary, request_id), timeout=DEADLINE, message="the bank's decision")
    assert decided["status"] == "APPROVED", decided
    assert len(decided["allocations"]) == 2
    assert {a["blood_group"] for a in decided["allocations"]} <= {"O+", "O-"}
    assert {a["component"] for a in decided["allocations"]} == {"RED_CELLS"}
    assert len({a["unit_id"] for a in decided["allocations"]}) == 2

    notices = ApiClient.login(stack.url("notification"), "stmary_staff")
    approved = wait_for(
        lambda: _notification(notices, request_id, "REQUEST_APPROVED"),
        timeout=DEADLINE,
        message="the hospital's approval notification",
    )
    assert approved["audience"].startswith("hospital:")

    bank_notices = ApiClient.login(stack.url("notification"), "bank_admin")
    created_notice = wait_for(
        lambda: _notification(bank_notices, request_id, "REQUEST_CREATED"),
        timeout=DEADLINE,
        message="the bank's new-request notification",
    )
    assert created_notice["severity"] == "CRITICAL"


def test_the_bank_sees_the_request_with_its_allocations(stack, stmary):
    request_id = stmary.post("/api/v1/blood-requests/", _emergency(units=1)).body["id"]
    wait_for(lambda: _decided(stmary, request_id), timeout=DEADLINE, message="the decision")
    bank = ApiClient.login(stack.url("bloodbank"), "bank_admin")
    seen = bank.get(f"/api/v1/requests/{request_id}/")
    assert seen.status == 200, seen.body
    assert len(seen.body["allocations"]) == 1


def test_another_hospital_cannot_see_the_request(stack, stmary, citygeneral):
    request_id = stmary.post("/api/v1/blood-requests/", _emergency(units=1)).body["id"]
    assert citygeneral.get(f"/api/v1/blood-requests/{request_id}/").status == 404
    assert stmary.get(f"/api/v1/blood-requests/{request_id}/").status == 200


def test_every_service_is_healthy_and_requires_authentication(stack):
    for service in ("hospital", "bloodbank", "notification"):
        anonymous = ApiClient(stack.url(service))
        assert anonymous.get("/healthz").status == 200
        assert anonymous.get("/readyz").status == 200
        schema = anonymous.get("/api/schema/")  # the contract is public; the data behind it is not
        assert schema.status == 200
        assert any(path.startswith("/api/v1/") for path in schema.body["paths"])
    assert ApiClient(stack.url("hospital")).get("/api/v1/blood-requests/").status == 401
    assert ApiClient(stack.url("notification")).get("/api/v1/notifications/").status == 401
    assert ApiClient(stack.url("bloodbank")).get("/api/v1/units/").status == 401


def test_a_token_works_only_at_the_service_that_issued_it(stack):
    """Tokens are per service: each has its own users and tokens, so a stolen token opens one door."""
    probes = {
        "hospital": "/api/v1/blood-requests/",
        "bloodbank": "/api/v1/stock/",
        "notification": "/api/v1/notifications/",
    }
    logins = {"hospital": "stmary_staff", "bloodbank": "bank_admin", "notification": "stmary_staff"}
    for issuer, username in logins.items():
        token = ApiClient.login(stack.url(issuer), username).token
        for service, path in probes.items():
            answer = ApiClient(stack.url(service), token).get(path)
            assert answer.status == (200 if service == issuer else 401), (issuer, service, answer)
    # A hospital's staff have no account at the bank at all: their login is refused there.
    password = os.environ.get("DEMO_PASSWORD", "demo-password")
    login = {"username": "stmary_staff", "password": password}
    assert ApiClient(stack.url("hospital")).post("/api/v1/auth/token/", login).status == 200
    assert ApiClient(stack.url("bloodbank")).post("/api/v1/auth/token/", login).status == 400


def _metrics(stack, service: str) -> str:
    with urllib.request.urlopen(stack.url(service, "/metrics"), timeout=10) as response:  # noqa: S310 - local
        return response.read().decode()


def _scraped_when(stack, service: str, name: str, **labels: str) -> str:
    """The service's /metrics once ``name`` (with ``labels``) counts at least 1 (its worker may still be busy)."""

    def counted() -> str | None:
        text = _metrics(stack, service)
        return text if (metric_value(text, name, **labels) or 0) >= 1 else None

    return wait_for(counted, timeout=DEADLINE, message=f"{name}{labels} on {service}'s /metrics")


def test_every_services_metrics_show_the_events_and_the_decision_of_a_request(stack, stmary):
    """Web and worker of each service write to one multiprocess directory: /metrics adds them up."""
    request_id = stmary.post("/api/v1/blood-requests/", _emergency(units=1)).body["id"]
    wait_for(lambda: _decided(stmary, request_id), timeout=DEADLINE, message="the decision")
    requested, approved = topics.topic_name(topics.REQUESTED), topics.topic_name(topics.APPROVED)

    hospital = _scraped_when(stack, "hospital", "hospital_request_decision_seconds_count", status="APPROVED")
    assert metric_value(hospital, "events_published_total", topic=requested) >= 1
    assert metric_value(hospital, "events_consumed_total", topic=approved, outcome="handled") >= 1
    assert metric_value(hospital, "hospital_decisions_applied_total", status="APPROVED") >= 1
    assert metric_value(hospital, "hospital_request_decision_seconds_bucket", le="+Inf") >= 1
    created = metric_value(
        hospital, "http_request_duration_seconds_count", method="POST", route="blood-request-list", status="201"
    )
    assert created >= 1
    assert metric_value(hospital, "outbox_pending_events") is not None

    bank = _scraped_when(stack, "bloodbank", "bloodbank_decisions_total", outcome="APPROVED", reason="")
    assert metric_value(bank, "events_consumed_total", topic=requested, outcome="handled") >= 1
    assert metric_value(bank, "events_published_total", topic=approved) >= 1
    assert metric_value(bank, "bloodbank_request_decision_seconds_count", priority="EMERGENCY") >= 1

    notices = _scraped_when(stack, "notification", "events_consumed_total", topic=approved, outcome="handled")
    assert metric_value(notices, "events_consumed_total", topic=requested, outcome="handled") >= 1


def test_every_worker_reports_healthy_through_its_heartbeat(stack):
    for service in ("hospital", "bloodbank", "notification"):
        result = stack.manage(service, "worker_health", check=False)
        assert result.returncode == 0, result.stderr
        assert "worker healthy" in result.stdout


def test_a_correlation_id_sent_by_the_caller_comes_back_from_gunicorn_and_uvicorn(stack):
    for service in ("hospital", "notification"):
        url = stack.url(service, "/healthz")
        request = urllib.request.Request(url, headers={"X-Correlation-ID": "e2e-4411"})  # noqa: S310 - local
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local
            assert response.headers["X-Correlation-ID"] == "e2e-4411"


def test_staff_create_an_emergency_request_on_the_dashboard_and_watch_it_approved(stack):
    """What the README promises after `make run`, in a real browser against the real bank."""
    from playwright.sync_api import expect

    from shared_events.testing import chromium

    output = Path(__file__).resolve().parent.parent / "var" / "test-output"
    output.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(stack.url("hospital", "/dashboard/"))
        page.get_by_label("Username").fill("stmary_staff")
        page.get_by_label("Password").fill(os.environ.get("DEMO_PASSWORD", "demo-password"))
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="New blood request")).to_be_visible()

        page.get_by_label("Emergency").check()
        page.get_by_label("Blood group").select_option("A+")
        page.get_by_label("Component").select_option("RED_CELLS")
        page.get_by_label(re.compile(r"^Units")).fill("2")
        page.get_by_role("button", name="Send request").click()
        expect(page.get_by_text("Request sent: 2 unit(s) of Red Cells A+.")).to_be_visible()

        page.evaluate("window.__notReloaded = true")
        card = page.locator("[data-request-id]").filter(has_text="Red Cells A+").first
        expect(card.locator('[data-role="status"]')).to_have_text("APPROVED", timeout=DEADLINE * 1000)
        assert page.evaluate("window.__notReloaded") is True, "the page reloaded"
        page.screenshot(path=str(output / "e2e-dashboard-approved.png"), full_page=True)
