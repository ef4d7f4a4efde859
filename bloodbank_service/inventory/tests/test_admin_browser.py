"""Django admin in a real browser: log in as bank_admin, find a unit by DIN, quarantine it, see the stock page."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connections
from playwright.sync_api import expect

from inventory.din import check_character
from inventory.models import Unit, UnitStatus
from shared_events.demo import demo_password
from shared_events.testing import chromium

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def browser_page(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(15000)
        try:
            yield page
        finally:
            # While Playwright's event loop runs, Django's connections are context-local: the ones the
            # test opened here would outlive the test and keep pytest-django from dropping the database.
            connections.close_all()


def test_a_bank_admin_finds_a_unit_by_din_quarantines_it_and_sees_the_stock_page(live_server, browser_page):
    call_command("seed_demo")
    unit = Unit.objects.filter(status=UnitStatus.AVAILABLE, component="RED_CELLS").order_by("din").first()
    page = browser_page
    OUTPUT.mkdir(exist_ok=True)

    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "bank_admin")
    page.fill("#id_password", demo_password())
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_contain_text("Blood bank administration")

    # The DIN as scanned from a label, with its check character.
    page.goto(f"{live_server.url}/admin/inventory/unit/")
    page.fill("#searchbar", unit.din + check_character(unit.din))
    page.press("#searchbar", "Enter")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(unit.din)

    rows.first.locator("input.action-select").check()
    page.select_option("select[name=action]", "quarantine_units")
    page.fill("input[name=reason]", "possible bag leak, inspect")
    page.click("button[name=index]")
    expect(page.locator("ul.messagelist")).to_contain_text("quarantine")
    unit.refresh_from_db()
    assert unit.status == UnitStatus.QUARANTINED
    assert unit.history.last().by == "bank_admin"
    assert unit.history.last().reason == "possible bag leak, inspect"
    page.screenshot(path=str(OUTPUT / "admin-unit-quarantined.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/inventory/stockoverview/")
    expect(page.locator("#stock-table")).to_be_visible()
    expect(page.locator("#stock-table tbody tr")).to_have_count(5)
    expect(page.locator("#stock-totals")).to_contain_text("units available")
    page.screenshot(path=str(OUTPUT / "admin-stock-picture.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/inventory/unit/{unit.pk}/change/")
    expect(page.locator("body")).to_contain_text("possible bag leak, inspect")
    page.wait_for_load_state("networkidle")  # no request still holding a database connection at teardown
