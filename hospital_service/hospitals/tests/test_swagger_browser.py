"""Swagger UI in a real headless Chromium: Authorize with a token, then "Try it out" on a GET."""

import pytest
from blood_requests.services import create_blood_request
from playwright.sync_api import expect

from shared_events.testing import chromium, token_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_swagger_ui_authorizes_with_a_token_and_runs_a_get(live_server, staff, hospital):
    ours = create_blood_request(
        hospital=hospital, user=staff, blood_group="O-", component="RED_CELLS", units=2, priority="EMERGENCY"
    )
    key = token_for(staff)

    with chromium() as browser:
        page = browser.new_page()
        page.goto(f"{live_server.url}/api/docs/")
        page.get_by_role("button", name="Authorize").first.click()
        token_auth = page.locator(".modal-ux form").filter(has_text="tokenAuth")
        token_auth.locator("input").fill(f"Token {key}")
        token_auth.get_by_role("button", name="Apply credentials").click()
        page.locator(".close-modal").click()

        operation = page.locator(".opblock-get", has=page.locator('[data-path="/api/v1/blood-requests/"]'))
        operation.locator(".opblock-summary").click()
        operation.get_by_role("button", name="Try it out").click()
        operation.get_by_role("button", name="Execute").click()

        response = operation.locator(".live-responses-table .response").first
        expect(response.locator(".response-col_status")).to_have_text("200", timeout=15_000)
        expect(response.locator(".response-col_description")).to_contain_text(str(ours.id))
