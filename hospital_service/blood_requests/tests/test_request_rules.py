"""The request API's transfusion rules (transfusion.md sections 5-7): emergency release, the confirmed-group
rule, special requirements, MTP. A broken rule is a 400 with field errors, and nothing is recorded or published."""

from datetime import timedelta

import pytest
from django.utils import timezone

from blood_requests.models import BloodRequest, MtpPack, StatusChange
from shared_events import topics
from shared_events.django.models import OutboxEvent
from shared_events.enums import ANTIGENS
from shared_events.envelope import parse_event

pytestmark = pytest.mark.django_db

URL = "/api/v1/blood-requests/"
EMERGENCY = {"blood_group": "O-", "component": "RED_CELLS", "units": 2, "priority": "EMERGENCY"}
RELEASE = {
    "blood_group": "UNKNOWN",
    "component": "RED_CELLS",
    "units": 2,
    "priority": "EMERGENCY",
    "authorised_by": "Dr Okafor",
}
MTP = {"protocol": "MTP", "blood_group": "UNKNOWN", "priority": "EMERGENCY", "authorised_by": "Dr Okafor"}
TOMORROW = (timezone.now() + timedelta(days=1)).isoformat()


def _requested():
    (row,) = OutboxEvent.objects.filter(event_type=topics.REQUESTED)
    return parse_event(bytes(row.value))


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        # emergency release (section 5)
        (RELEASE | {"priority": "SCHEDULED", "needed_by": TOMORROW}, {"blood_group"}),
        ({k: v for k, v in RELEASE.items() if k != "authorised_by"}, {"authorised_by"}),
        (RELEASE | {"authorised_by": "   "}, {"authorised_by"}),
        (RELEASE | {"allow_partial": False}, {"allow_partial"}),
        (RELEASE | {"component": "WHOLE_BLOOD"}, {"component"}),
        (RELEASE | {"group_confirmed": True}, {"group_confirmed"}),
        (RELEASE | {"blood_group": "unknown"}, {"blood_group"}),
        # the confirmed-group rule: whole blood is ABO-identical, so the group must be confirmed
        (EMERGENCY | {"component": "WHOLE_BLOOD"}, {"component"}),
        (EMERGENCY | {"component": "WHOLE_BLOOD", "group_confirmed": False}, {"component"}),
        # special requirements and antigens (section 6): known values only, antigens case-sensitive
        (EMERGENCY | {"special_requirements": ["GAMMA_IRRADIATED"]}, {"special_requirements"}),
        (EMERGENCY | {"special_requirements": ["irradiated"]}, {"special_requirements"}),
        (EMERGENCY | {"special_requirements": "IRRADIATED"}, {"special_requirements"}),
        (EMERGENCY | {"antigen_negative": ["k", "Kell"]}, {"antigen_negative"}),
        (EMERGENCY | {"antigen_negative": ["FYA"]}, {"antigen_negative"}),
        (EMERGENCY | {"antigen_negative": ["d"]}, {"antigen_negative"}),
        # MTP (section 7)
        ({k: v for k, v in MTP.items() if k != "authorised_by"}, {"authorised_by"}),
        (MTP | {"priority": "SCHEDULED", "needed_by": TOMORROW, "blood_group": "A+"}, {"priority"}),
        (MTP | {"component": "RED_CELLS"}, {"component"}),
        (MTP | {"units": 4}, {"units"}),
        (MTP | {"component": "RED_CELLS", "units": 4}, {"component", "units"}),
        (MTP | {"allow_partial": False}, {"allow_partial"}),
        (MTP | {"protocol": "MAJOR_HAEMORRHAGE"}, {"protocol"}),
        # a STANDARD request still needs its component and units
        ({"blood_group": "O-", "priority": "EMERGENCY"}, {"component", "units"}),
    ],
)
def test_a_broken_transfusion_rule_is_a_400_with_field_errors_and_nothing_recorded_or_published(api, body, fields):
    response = api.post(URL, body, format="json")

    assert response.status_code == 400, response.data
    assert set(response.data) == fields, response.data
    assert not BloodRequest.objects.exists()
    assert not StatusChange.objects.exists()
    assert not MtpPack.objects.exists()
    assert not OutboxEvent.objects.exists()


def test_an_emergency_release_is_accepted_and_published_as_v2_with_every_field(api, hospital):
    response = api.post(URL, RELEASE | {"rhd_negative_required": False, "patient_reference": "TR-7"}, format="json")

    assert response.status_code == 201, response.data
    body = response.data
    assert (body["blood_group"], body["protocol"], body["authorised_by"]) == ("UNKNOWN", "STANDARD", "Dr Okafor")
    assert body["group_confirmed"] is False and body["rhd_negative_required"] is False
    assert body["allow_partial"] is True and body["uncrossmatched"] is False and body["packs"] == []
    event = _requested()
    assert event.major == 2
    data = event.data
    assert data.blood_group == "UNKNOWN" and data.group_unknown
    assert data.authorised_by == "Dr Okafor"
    assert (data.group_confirmed, data.rhd_negative_required, data.allow_partial) == (False, False, True)
    assert data.protocol == "STANDARD" and data.component == "RED_CELLS" and data.units == 2


def test_group_confirmed_is_false_unless_said_and_rhd_negative_required_true(api):
    response = api.post(URL, EMERGENCY | {"blood_group": "A+"}, format="json")

    assert response.status_code == 201
    assert response.data["group_confirmed"] is False and response.data["rhd_negative_required"] is True
    data = _requested().data
    assert data.group_confirmed is False and data.rhd_negative_required is True
    assert data.special_requirements == [] and data.antigen_negative == [] and data.authorised_by is None


def test_special_requirements_and_antigens_are_kept_once_each_and_published(api):
    body = EMERGENCY | {
        "blood_group": "A+",
        "group_confirmed": True,
        "special_requirements": ["IRRADIATED", "CMV_NEGATIVE", "IRRADIATED"],
        "antigen_negative": ["K", "c", "Fya", "K"],
    }
    response = api.post(URL, body, format="json")

    assert response.status_code == 201, response.data
    assert response.data["special_requirements"] == ["IRRADIATED", "CMV_NEGATIVE"]
    assert response.data["antigen_negative"] == ["K", "c", "Fya"]
    data = _requested().data
    assert [r.value for r in data.special_requirements] == ["IRRADIATED", "CMV_NEGATIVE"]
    assert data.antigen_negative == ["K", "c", "Fya"]
    assert data.group_confirmed is True


@pytest.mark.parametrize("antigen", ANTIGENS)
def test_every_listed_antigen_is_accepted(api, antigen):
    assert api.post(URL, EMERGENCY | {"antigen_negative": [antigen]}, format="json").status_code == 201


def test_whole_blood_is_accepted_for_a_confirmed_group(api):
    response = api.post(URL, EMERGENCY | {"component": "WHOLE_BLOOD", "group_confirmed": True}, format="json")
    assert response.status_code == 201, response.data


def test_an_mtp_request_has_no_component_or_units_and_asks_for_pack_1(api):
    response = api.post(URL, MTP | {"special_requirements": ["IRRADIATED"]}, format="json")

    assert response.status_code == 201, response.data
    body = response.data
    assert (body["protocol"], body["component"], body["units"], body["status"]) == ("MTP", None, None, "PENDING")
    assert body["allow_partial"] is True
    assert [(p["pack"], p["status"]) for p in body["packs"]] == [(1, "REQUESTED")]
    data = _requested().data
    assert data.protocol == "MTP" and data.component is None and data.units is None
    assert data.authorised_by == "Dr Okafor" and data.allow_partial is True
    assert [r.value for r in data.special_requirements] == ["IRRADIATED"]
    assert api.get(f"{URL}{body['id']}/").json() == response.json()
    assert api.get(URL, {"status": "PENDING"}).data["results"][0]["packs"][0]["pack"] == 1
