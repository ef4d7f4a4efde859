"""The dashboard's server side: login, tenancy, the form (API rules), actions and the state endpoint."""

import uuid
from datetime import timedelta

import pytest
from blood_requests import services
from blood_requests.handlers import HANDLERS
from blood_requests.models import BloodRequest, MtpPack
from django.utils import timezone
from local_inventory.models import LocalUnit
from testing_support.factories import (
    UserFactory,
    approve_and_dispatch,
    approved_event,
    dispatched_event,
    inventory_event,
    low_stock_event,
    make_request,
    mtp_pack_allocations,
    recall_event,
    receive_all,
)

from shared_events import topics
from shared_events.django.models import OutboxEvent
from shared_events.envelope import parse_event

pytestmark = pytest.mark.django_db

FORM = {"priority": "EMERGENCY", "blood_group": "O-", "component": "RED_CELLS", "units": "2"}


@pytest.fixture
def browser(client, staff):
    client.force_login(staff)
    return client


def test_the_dashboard_needs_a_login(client):
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_login_page_logs_staff_in_to_the_dashboard(client, staff):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert b'<label for="id_username">' in page.content

    response = client.post("/accounts/login/", {"username": "stmary_staff", "password": "pw-for-tests"})

    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"


def test_a_user_without_a_hospital_is_refused(client):
    client.force_login(UserFactory(username="nobody"))
    assert client.get("/dashboard/").status_code == 403
    assert client.get("/dashboard/state/").status_code == 403
    assert client.post("/dashboard/requests/", FORM).status_code == 403


def test_the_dashboard_shows_requests_stock_and_alerts(browser, hospital, staff, other_hospital, other_staff):
    mine = make_request(hospital=hospital, user=staff, patient_reference="MRN-7")
    theirs = make_request(hospital=other_hospital, user=other_staff)
    HANDLERS[topics.INVENTORY_UPDATED](inventory_event(blood_group="O-", available=2, level="CRITICAL"))
    HANDLERS[topics.LOW_STOCK](low_stock_event(blood_group="O-", level="CRITICAL", available=2))

    page = browser.get("/dashboard/").content.decode()

    assert f'data-request-id="{mine.id}"' in page
    assert str(theirs.id) not in page
    assert "MRN-7" in page
    assert "level-critical" in page
    assert "Bank stock CRITICAL" in page


def test_the_state_endpoint_reports_statuses_and_fragments(browser, hospital, staff):
    blood_request = make_request(hospital=hospital, user=staff)
    event = approved_event(blood_request)
    services.record_approval(data=event.data, event_id=event.id)

    state = browser.get("/dashboard/state/").json()

    assert state["statuses"] == {str(blood_request.id): "APPROVED"}
    assert set(state["regions"]) == {"requests", "local-stock", "bank-stock", "alerts"}
    assert "APPROVED" in state["regions"]["requests"]
    assert "Request approved" in state["regions"]["alerts"]


def test_the_form_creates_a_request_like_the_api(browser, hospital):
    response = browser.post("/dashboard/requests/", FORM)

    assert response.status_code == 302
    blood_request = BloodRequest.objects.get()
    assert (blood_request.hospital, blood_request.units, blood_request.allow_partial) == (hospital, 2, True)
    assert OutboxEvent.objects.filter(event_type=topics.REQUESTED).count() == 1


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (FORM | {"units": "21"}, "less than or equal to 20"),
        (FORM | {"priority": "SCHEDULED"}, "Required for a SCHEDULED request."),
        (
            FORM
            | {"priority": "SCHEDULED", "needed_by": (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")},
            "Must be in the future.",
        ),
        (FORM | {"patient_reference": "Jane Doe"}, "never a patient"),
    ],
)
def test_the_form_shows_the_apis_validation_messages(browser, form, message):
    response = browser.post("/dashboard/requests/", form)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode()
    assert not BloodRequest.objects.exists()


def test_cancel_and_receive_by_scanning(browser, hospital, staff):
    to_cancel = make_request(hospital=hospital, user=staff)
    to_receive = approve_and_dispatch(make_request(hospital=hospital, user=staff, units=1))
    din = to_receive.dispatched_units[0]["din"]

    browser.post(f"/dashboard/requests/{to_cancel.id}/cancel/", {"reason": "not needed"})
    wrong = browser.post(f"/dashboard/requests/{to_receive.id}/receive/", {"dins": "A999926999999"}, follow=True)
    assert "do not match" in wrong.content.decode()
    browser.post(f"/dashboard/requests/{to_receive.id}/receive/", {"dins": din})
    again = browser.post(f"/dashboard/requests/{to_receive.id}/receive/", {"dins": din}, follow=True)

    to_cancel.refresh_from_db()
    to_receive.refresh_from_db()
    assert (to_cancel.status, to_cancel.cancel_reason) == ("CANCELLED", "not needed")
    assert to_receive.status == "FULFILLED"
    assert LocalUnit.objects.filter(source_request=to_receive).count() == 1
    assert "Not done" in again.content.decode()


def test_actions_on_another_hospitals_request_are_404(browser, other_hospital, other_staff):
    theirs = make_request(hospital=other_hospital, user=other_staff)
    assert browser.post(f"/dashboard/requests/{theirs.id}/cancel/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "PENDING"


def test_unit_buttons_transfuse_and_discard(browser, hospital, staff):
    receive_all(make_request(hospital=hospital, user=staff, units=2), user=staff)
    first, second = LocalUnit.objects.order_by("din")

    browser.post(f"/dashboard/units/{first.id}/transfuse/", {"patient_reference": ""})
    browser.post(f"/dashboard/units/{second.id}/discard/", {"reason": ""})
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("AVAILABLE", "AVAILABLE")

    browser.post(f"/dashboard/units/{first.id}/transfuse/", {"patient_reference": "MRN-12"})
    browser.post(f"/dashboard/units/{second.id}/discard/", {"reason": "TEMPERATURE_EXCURSION"})
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.patient_reference) == ("TRANSFUSED", "MRN-12")
    assert (second.status, second.waste_reason) == ("WASTED", "TEMPERATURE_EXCURSION")


def test_the_return_button_sends_the_minutes_out_of_the_fridge_and_the_cold_chain(browser, hospital, staff):
    receive_all(make_request(hospital=hospital, user=staff, units=2), user=staff)
    kept, broken = LocalUnit.objects.order_by("din")

    refused = browser.post(f"/dashboard/units/{kept.id}/return/", {"minutes_out": "soon"}, follow=True)
    assert "minutes out of the fridge" in refused.content.decode()
    browser.post(f"/dashboard/units/{kept.id}/return/", {"minutes_out": "20", "cold_chain_intact": "true"})
    browser.post(f"/dashboard/units/{broken.id}/return/", {"minutes_out": "45"})

    kept.refresh_from_db()
    broken.refresh_from_db()
    assert (kept.status, kept.cold_chain_intact, broken.status, broken.cold_chain_intact) == (
        "RETURNED",
        True,
        "RETURNED",
        False,
    )
    assert kept.returned_at - kept.left_storage_at == timedelta(minutes=20)
    fates = [parse_event(bytes(r.value)).data for r in OutboxEvent.objects.filter(event_type=topics.UNIT_FATE)]
    assert sorted((f.unit.din, f.fate, f.cold_chain_intact) for f in fates) == [
        (kept.din, "RETURNED", True),
        (broken.din, "RETURNED", False),
    ]


def test_a_recall_shows_as_a_banner_and_on_the_units_it_concerns(browser, hospital, staff):
    held = receive_all(make_request(hospital=hospital, user=staff, units=3), user=staff)
    used, recalled, other = LocalUnit.objects.order_by("din")
    browser.post(f"/dashboard/units/{used.id}/transfuse/", {"patient_reference": "MRN-77"})
    travelling = approve_and_dispatch(make_request(hospital=hospital, user=staff, units=1))
    listed = [
        unit | {"request_id": str(request.id), "bank_status": "ISSUED"}
        for request, unit in [
            (held, next(u for u in held.dispatched_units if u["din"] == used.din)),
            (held, next(u for u in held.dispatched_units if u["din"] == recalled.din)),
            (travelling, travelling.dispatched_units[0]),
        ]
    ]
    HANDLERS[topics.RECALL_ISSUED](recall_event(recall_id=str(uuid.uuid4()), hospital_id=hospital.id, units=listed))

    page = browser.get("/dashboard/").content.decode()
    banner = page[page.index('class="alert alert-critical recall-banner"') :]
    banner = banner[: banner.index("</div>")]
    assert f"Quarantined here, never to be transfused: {recalled.din}" in banner
    assert f"On their way: {travelling.dispatched_units[0]['din']}" in banner
    assert f"{used.din} to MRN-77" in banner  # the look-back
    row = page[page.index(f'data-din="{recalled.din}"') :]
    row = row[: row.index("</li>")]
    assert 'data-role="recall"' in row and "QUARANTINED" in row
    assert "Transfused</button>" not in row and "Return to bank" in row and "Discard" in row
    row = page[page.index(f'data-din="{other.din}"') :]
    assert 'data-role="recall"' not in row[: row.index("</li>")]

    browser.post(f"/dashboard/units/{recalled.id}/discard/", {"reason": "RECALLED"})
    receive_all(travelling, user=staff)  # quarantined on arrival
    arrived = LocalUnit.objects.get(source_request=travelling)
    browser.post(f"/dashboard/units/{arrived.id}/return/", {"minutes_out": "5", "cold_chain_intact": "true"})
    assert "recall-banner" not in browser.get("/dashboard/").content.decode()  # nothing left to act on


@pytest.mark.parametrize("path", ["/dashboard/", "/accounts/login/"])
def test_the_dashboard_and_its_login_page_carry_a_strict_content_security_policy(client, staff, path):
    if path == "/dashboard/":
        client.force_login(staff)
    response = client.get(path)
    assert response.status_code == 200
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == policy["style-src"] == "'self'"  # no inline script or style runs
    assert policy["default-src"] == policy["frame-ancestors"] == "'none'"
    assert "<script>" not in response.content.decode() and " style=" not in response.content.decode()


# -- transfusion.md sections 5-7 on the form and the request list ----------------------------------


def test_the_form_offers_unknown_group_mtp_clinician_and_an_unticked_group_confirmed(browser):
    page = browser.get("/dashboard/").content.decode()

    assert '<option value="UNKNOWN"' in page
    assert 'name="protocol" value="MTP"' in page
    assert 'name="authorised_by"' in page
    confirmed = page[page.index('id="id_group_confirmed"') - 200 : page.index('id="id_group_confirmed"') + 200]
    assert 'type="checkbox"' in confirmed and "checked" not in confirmed
    assert (
        "Tick only if two independent group determinations agree; otherwise group O red cells and AB plasma are "
        "given." in page
    )
    rhd = page[page.index('id="id_rhd_negative_required"') : page.index('id="id_rhd_negative_required"') + 120]
    assert "checked" in rhd
    assert 'name="special_requirements" value="IRRADIATED"' in page
    assert 'name="antigen_negative" value="Fya"' in page


def test_the_form_sends_an_unconfirmed_group_unless_the_box_is_ticked(browser):
    browser.post("/dashboard/requests/", FORM | {"blood_group": "A+"})
    browser.post("/dashboard/requests/", FORM | {"blood_group": "A+", "group_confirmed": "true"})

    unticked, ticked = BloodRequest.objects.order_by("created_at")
    assert (unticked.group_confirmed, ticked.group_confirmed) == (False, True)
    assert unticked.rhd_negative_required is True  # a post without the field keeps the API's default


def test_the_form_sends_an_emergency_release_with_requirements_and_antigens(browser):
    form = FORM | {
        "blood_group": "UNKNOWN",
        "authorised_by": "Dr Okafor",
        "rhd_negative_required": ["false"],  # the hidden field alone: the box was unticked
        "special_requirements": ["IRRADIATED", "CMV_NEGATIVE"],
        "antigen_negative": ["K", "Jka"],
    }
    response = browser.post("/dashboard/requests/", form)

    assert response.status_code == 302
    blood_request = BloodRequest.objects.get()
    assert (blood_request.blood_group, blood_request.authorised_by) == ("UNKNOWN", "Dr Okafor")
    assert blood_request.rhd_negative_required is False
    assert blood_request.special_requirements == ["IRRADIATED", "CMV_NEGATIVE"]
    assert blood_request.antigen_negative == ["K", "Jka"]


def test_the_form_sends_an_mtp_without_component_or_units(browser):
    response = browser.post("/dashboard/requests/", FORM | {"protocol": "MTP", "authorised_by": "Dr Okafor"})

    assert response.status_code == 302
    blood_request = BloodRequest.objects.get()
    assert (blood_request.protocol, blood_request.component, blood_request.units) == ("MTP", None, None)
    assert MtpPack.objects.get(request=blood_request).number == 1


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (FORM | {"blood_group": "UNKNOWN"}, "the clinician who authorised it"),
        (FORM | {"protocol": "MTP"}, "the clinician who authorised it"),
        (FORM | {"blood_group": "UNKNOWN", "authorised_by": "Dr O", "allow_partial": "false"}, "never all-or-nothing"),
        (FORM | {"component": "WHOLE_BLOOD"}, "Whole blood needs a confirmed group"),
        (FORM | {"antigen_negative": ["Kell"]}, "is not a valid choice"),
    ],
)
def test_the_form_shows_the_transfusion_rules_and_records_nothing(browser, form, message):
    response = browser.post("/dashboard/requests/", form)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not BloodRequest.objects.exists() and not OutboxEvent.objects.exists()


def test_the_request_list_marks_uncrossmatched_units_and_shows_mtp_packs_with_their_buttons(browser, hospital, staff):
    release = make_request(hospital=hospital, user=staff, blood_group="UNKNOWN", authorised_by="Dr Okafor")
    HANDLERS[topics.APPROVED](approved_event(release, uncrossmatched=True))
    mtp = make_request(
        hospital=hospital, user=staff, protocol="MTP", blood_group="O+", authorised_by="Dr Okafor", component=None
    )
    HANDLERS[topics.APPROVED](approved_event(mtp, pack=1, allocations=mtp_pack_allocations(pack=1), units_requested=8))

    page = browser.get("/dashboard/").content.decode()

    card = page[page.index(f'data-request-id="{release.id}"') :]
    assert 'data-role="uncrossmatched"' in card[: card.index("</li>")]
    assert "Request approved: UNCROSSMATCHED" in page  # the alert is critical
    card = page[page.index(f'data-request-id="{mtp.id}"') :]
    card = card[: card.index("</li>")]
    assert "Massive transfusion protocol" in card and 'data-pack="1" data-pack-status="APPROVED"' in card
    assert "Next pack" in card and "Stop MTP" in card

    browser.post(f"/dashboard/requests/{mtp.id}/next-pack/")
    assert list(MtpPack.objects.filter(request=mtp).values_list("number", flat=True)) == [1, 2]
    again = browser.post(f"/dashboard/requests/{mtp.id}/next-pack/", follow=True).content.decode()
    assert "not decided pack 2 yet" in again
    browser.post(f"/dashboard/requests/{mtp.id}/stop-mtp/")
    mtp.refresh_from_db()
    assert mtp.status == "CANCELLED" and mtp.mtp_stopped_by == staff
    assert OutboxEvent.objects.filter(event_type=topics.MTP_STOPPED).count() == 1


def test_a_pack_is_received_from_the_dashboard_by_scanning(browser, hospital, staff):
    mtp = make_request(hospital=hospital, user=staff, protocol="MTP", blood_group="O+", authorised_by="Dr O")
    allocations = mtp_pack_allocations(pack=1, red_cells=2, plasma=1)
    HANDLERS[topics.APPROVED](approved_event(mtp, pack=1, allocations=allocations, units_requested=8))
    HANDLERS[topics.UNITS_DISPATCHED](dispatched_event(mtp, allocations, pack=1))
    assert "Receive pack 1" in browser.get("/dashboard/").content.decode()

    page = browser.post(
        f"/dashboard/requests/{mtp.id}/receive/",
        {"pack": "1", "dins": " ".join(a["din"] for a in allocations)},
        follow=True,
    ).content.decode()

    assert "3 unit(s) (pack 1) received into local stock" in page
    assert MtpPack.objects.get(request=mtp).status == "RECEIVED"


def test_the_bank_stock_grid_shows_days_of_supply(browser):
    HANDLERS[topics.INVENTORY_UPDATED](inventory_event(blood_group="O-", available=9, days_of_supply=2.25))
    HANDLERS[topics.INVENTORY_UPDATED](inventory_event(blood_group="A+", available=3))

    grid = browser.get("/dashboard/").content.decode()

    assert '<span class="days" data-role="days-of-supply">2.3 d</span>' in grid
    assert '<span class="days" data-role="days-of-supply">\N{EN DASH} d</span>' in grid
