"""The dashboard in a real headless Chromium: log in, request blood, watch it turn APPROVED live.

Everything is real: the live server, PostgreSQL, the broker, the outbox relay that publishes
the request, and the hospital's consumer that applies the decision. The test plays the bank
by producing a ``bloodbank.blood.approved`` event once the request has been published.
"""

import re
import threading
import time
import uuid
from pathlib import Path

import pytest
from blood_requests.handlers import HANDLERS
from blood_requests.models import BloodRequest
from confluent_kafka import Producer
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connections
from hospitals.selectors import hospital_of
from local_inventory.models import LocalUnit
from playwright.sync_api import expect
from testing_support.factories import (
    approve_and_dispatch,
    approved_event,
    inventory_event,
    low_stock_event,
    make_request,
    recall_event,
)

from shared_events import topics
from shared_events.demo import demo_password
from shared_events.django.consumer import EventConsumer
from shared_events.django.relay import OutboxRelay
from shared_events.envelope import parse_event
from shared_events.kafka_config import producer_config
from shared_events.testing import chromium, read_topic, running, wait_for
from shared_events.topics import topic_name

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()

OUTPUT_DIR = Path(__file__).resolve().parents[2] / "test-output"


@pytest.fixture
def output_dir() -> Path:
    OUTPUT_DIR.mkdir(exist_ok=True)
    return OUTPUT_DIR


def _produce(event) -> None:
    producer = Producer(producer_config())
    producer.produce(topic_name(event.type), key=event.subject, value=event.envelope.to_bytes())
    assert producer.flush(10) == 0


def _status(request_id) -> str:
    return BloodRequest.objects.get(id=request_id).status


def test_staff_see_an_emergency_request_turn_approved_without_reloading(
    live_server, kafka_topics, output_dir, monkeypatch
):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM reads are synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    call_command("seed_demo")
    relay_stop = threading.Event()
    consumer = EventConsumer(
        handlers=HANDLERS, stop=threading.Event(), group_id=f"test-dashboard-{uuid.uuid4().hex[:8]}"
    )

    with (
        running(OutboxRelay(stop=relay_stop).run, relay_stop),
        running(consumer.run, consumer.stop),
        chromium() as browser,
    ):
        # The bank's stock as it last reported it: O- critical, O+ low.
        for event in (
            inventory_event(blood_group="O-", available=2, level="CRITICAL"),
            inventory_event(blood_group="O+", available=7, level="LOW"),
            inventory_event(blood_group="A+", available=31, level="OK"),
            inventory_event(component="PLASMA", blood_group="AB+", available=12, level="OK"),
            low_stock_event(blood_group="O-", level="CRITICAL", available=2),
        ):
            _produce(event)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})

            # Log in through the session login page.
            page.goto(f"{live_server.url}/dashboard/")
            expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/dashboard/")
            page.get_by_label("Username").fill("stmary_staff")
            page.get_by_label("Password").fill(demo_password())
            page.get_by_role("button", name="Log in").click()
            expect(page).to_have_url(f"{live_server.url}/dashboard/")
            expect(page.get_by_role("heading", name="New blood request")).to_be_visible()

            # Client-side validation stops an incomplete form before it reaches the server.
            page.get_by_role("button", name="Send request").click()
            expect(page.locator("#blood_group-error")).to_have_text("Choose the blood group.")
            assert not BloodRequest.objects.exists()

            # Request two units of O- red cells, as an emergency.
            page.get_by_label("Emergency").check()
            page.get_by_label("Blood group").select_option("O-")
            page.get_by_label("Component").select_option("RED_CELLS")
            page.get_by_label(re.compile(r"^Units")).fill("2")
            page.get_by_role("button", name="Send request").click()
            expect(page.get_by_text("Request sent: 2 unit(s) of Red Cells O-.")).to_be_visible()

            blood_request = wait_for(BloodRequest.objects.first, message="the request stored")
            card = page.locator(f'[data-request-id="{blood_request.id}"]')
            badge = card.locator('[data-role="status"]')
            expect(badge).to_have_text("PENDING")

            # The relay really published it; now the bank (this test) answers on the broker.
            (message,) = read_topic(topic_name(topics.REQUESTED), 1)
            assert str(parse_event(message.value()).data.request_id) == str(blood_request.id)
            page.evaluate("window.__notReloaded = true")
            wait_for(consumer.assigned.is_set, timeout=30, message="the consumer's partition assignment")
            _produce(approved_event(blood_request))

            wait_for(lambda: _status(blood_request.id) == "APPROVED", timeout=30, message="the decision consumed")
            applied_at = time.monotonic()
            expect(badge).to_have_text("APPROVED", timeout=2000)
            shown_after = time.monotonic() - applied_at
            assert shown_after < 2.0, f"badge changed {shown_after:.2f}s after the decision"
            assert page.evaluate("window.__notReloaded") is True, "the page reloaded"
            # Approved, not dispatched yet: it can be cancelled, not received.
            expect(card.get_by_role("button", name="Cancel")).to_be_visible()
            expect(card.get_by_role("button", name="Receive")).to_have_count(0)
            expect(page.get_by_text("Request approved")).to_be_visible()
            expect(page.locator("td.level-critical")).to_contain_text("CRITICAL")
            expect(page.locator("td.level-low")).to_contain_text("LOW")
            page.screenshot(path=str(output_dir / "dashboard-approved.png"), full_page=True)

            # Phone-sized: one column, nothing wider than the screen.
            page.set_viewport_size({"width": 375, "height": 812})
            expect(badge).to_be_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= 375
            page.screenshot(path=str(output_dir / "dashboard-approved-phone.png"), full_page=True)
        finally:
            # ORM reads made while Playwright's loop runs get their own connection; close it here.
            connections.close_all()

    assert (output_dir / "dashboard-approved.png").stat().st_size > 10_000


def _log_in(page, live_server) -> None:
    page.goto(f"{live_server.url}/dashboard/")
    page.get_by_label("Username").fill("stmary_staff")
    page.get_by_label("Password").fill(demo_password())
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_server.url}/dashboard/")


def test_a_nurse_asks_for_an_emergency_release_and_an_mtp_from_the_form(live_server, output_dir, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    call_command("seed_demo")
    with chromium() as browser:
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            _log_in(page, live_server)

            # The confirmed-group box is off by default and says what it means.
            confirmed = page.get_by_label("Group confirmed")
            expect(confirmed).not_to_be_checked()
            expect(
                page.get_by_text(
                    "Tick only if two independent group determinations agree; otherwise group O red cells and AB "
                    "plasma are given."
                )
            ).to_be_visible()
            expect(page.get_by_label("RhD-negative required")).to_be_checked()

            # An unknown group without the clinician is stopped in the page.
            page.get_by_label("Emergency").check()
            page.get_by_label("Blood group").select_option("UNKNOWN")
            page.get_by_label("Component").select_option("RED_CELLS")
            page.get_by_label(re.compile(r"^Units")).fill("2")
            page.get_by_label("Irradiated").check()
            page.get_by_label("K", exact=True).check()
            page.get_by_role("button", name="Send request").click()
            expect(page.locator("#authorised_by-error")).to_contain_text("the clinician who authorised it")
            assert not BloodRequest.objects.exists()

            page.get_by_label(re.compile(r"^Authorising clinician")).fill("Dr Okafor")
            page.get_by_role("button", name="Send request").click()
            expect(page.get_by_text("Request sent: 2 unit(s) of Red Cells UNKNOWN.")).to_be_visible()
            release = BloodRequest.objects.get()
            assert (release.blood_group, release.authorised_by, release.group_confirmed) == (
                "UNKNOWN",
                "Dr Okafor",
                False,
            )
            assert (release.special_requirements, release.antigen_negative) == (["IRRADIATED"], ["K"])
            assert release.rhd_negative_required is True

            # MTP: component and units go away; the request goes with its pack 1.
            page.get_by_label("MTP (massive transfusion)").check()
            expect(page.get_by_label("Component")).to_be_hidden()
            expect(page.get_by_label(re.compile(r"^Units"))).to_be_hidden()
            page.get_by_label("Blood group").select_option("O+")
            page.get_by_label(re.compile(r"^Authorising clinician")).fill("Dr Okafor")
            page.get_by_role("button", name="Send request").click()
            expect(page.get_by_text(re.compile(r"Request sent: massive transfusion protocol"))).to_be_visible()
            mtp = BloodRequest.objects.get(protocol="MTP")
            assert (mtp.component, mtp.units, mtp.group_confirmed) == (None, None, False)
            card = page.locator(f'[data-request-id="{mtp.id}"]')
            expect(card.locator('[data-pack="1"]')).to_contain_text("REQUESTED")
            page.screenshot(path=str(output_dir / "dashboard-mtp-form.png"), full_page=True)
        finally:
            connections.close_all()


def test_a_nurse_receives_by_scanning_records_fates_and_sees_a_recall_on_the_unit_it_concerns(
    live_server, output_dir, monkeypatch
):
    """Transfusion.md sections 1, 2 and 4 at the bedside: scan the bags in (a wrong one is refused), transfuse
    one, return one, then a recall arrives while the page is open and marks the unit it concerns."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    call_command("seed_demo")
    staff = User.objects.get(username="stmary_staff")
    hospital = hospital_of(staff)
    dispatched = approve_and_dispatch(make_request(hospital=hospital, user=staff, units=3))
    dins = sorted(unit["din"] for unit in dispatched.dispatched_units)
    with chromium() as browser:
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            _log_in(page, live_server)
            card = page.locator(f'[data-request-id="{dispatched.id}"]')
            expect(card.locator('[data-role="status"]')).to_have_text("DISPATCHED")

            # A bag that was not sent is refused with what differs, and nothing is received.
            scan = card.get_by_label("Scan the 3 bag(s) received")
            scan.fill("\n".join([*dins[:2], "A999926999999"]))
            card.get_by_role("button", name="Receive").click()
            expect(page.get_by_text(re.compile(r"Not received: the scanned DINs do not match"))).to_contain_text(
                f"missing: {dins[2]}"
            )
            assert not LocalUnit.objects.exists()
            page.locator(f'[data-request-id="{dispatched.id}"]').get_by_label("Scan the 3 bag(s) received").fill(
                "\n".join(dins)
            )
            page.locator(f'[data-request-id="{dispatched.id}"]').get_by_role("button", name="Receive").click()
            expect(page.get_by_text("3 unit(s) received into local stock")).to_be_visible()

            # One is transfused, one returned after 20 minutes out of the fridge, cold chain intact.
            used, returned, recalled = (page.locator(f'[data-din="{din}"]') for din in dins)
            page.get_by_text("Units (3)").click()
            used.get_by_label(f"Patient reference for {dins[0]}").fill("MRN-4411")
            used.get_by_role("button", name="Transfused").click()
            expect(page.get_by_text(f"Unit {dins[0]} recorded as transfused to MRN-4411.")).to_be_visible()
            page.get_by_text("Units (2)").click()
            returned.get_by_label(f"Minutes {dins[1]} has been out of the fridge").fill("20")
            returned.get_by_label("Cold chain intact").check()
            returned.get_by_role("button", name="Return to bank").click()
            expect(page.get_by_text(re.compile(rf"Unit {dins[1]} returned to the bank"))).to_be_visible()
            statuses = dict(LocalUnit.objects.values_list("din", "status"))
            assert statuses == {dins[0]: "TRANSFUSED", dins[1]: "RETURNED", dins[2]: "AVAILABLE"}

            # The bank recalls the donation of the unit still held, and of the transfused one (look-back);
            # the open page shows it within a poll, on the unit it concerns.
            page.evaluate("window.__notReloaded = true")
            page.get_by_text("Units (1)").click()
            listed = [
                unit | {"request_id": str(dispatched.id), "bank_status": "ISSUED"}
                for unit in dispatched.dispatched_units
                if unit["din"] in (dins[0], dins[2])
            ]
            HANDLERS[topics.RECALL_ISSUED](
                recall_event(recall_id=str(uuid.uuid4()), hospital_id=hospital.id, units=listed)
            )
            banner = page.locator(".recall-banner")
            expect(banner).to_contain_text(f"Quarantined here, never to be transfused: {dins[2]}", timeout=5000)
            expect(banner).to_contain_text(f"{dins[0]} to MRN-4411")
            expect(recalled.locator('[data-role="recall"]')).to_contain_text("do not transfuse")
            expect(recalled.get_by_role("button", name="Transfused")).to_have_count(0)
            assert page.evaluate("window.__notReloaded") is True, "the page reloaded"
            page.screenshot(path=str(output_dir / "dashboard-recall.png"), full_page=True)

            recalled.get_by_label(f"Reason for discarding {dins[2]}").select_option("RECALLED")
            recalled.get_by_role("button", name="Discard").click()
            expect(page.get_by_text(f"Unit {dins[2]} recorded as wasted.")).to_be_visible()
            expect(page.locator(".recall-banner")).to_have_count(0)
        finally:
            connections.close_all()
