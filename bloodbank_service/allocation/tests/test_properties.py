"""Property-based tests on PostgreSQL: random inventories and request/cancel streams.

Whatever the stream: never an incompatible unit, never a unit twice, never
more than available, never an expired unit, the O-negative reserve kept; and
(transfusion.md sections 5-7) never a unit lacking a required attribute or
antigen-negative typing, never a non-O red cell on an unknown or unconfirmed
group, plasma for such a recipient AB or HT-negative A, every MTP pack decided
once and never larger than its recipe.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import UnitFactory, cancelled_payload, make_event
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inventory.models import Unit, UnitStatus
from inventory.services import expire_units

from allocation.compatibility import is_compatible, is_emergency_reserve
from allocation.handlers import HANDLERS
from allocation.models import Allocation, BankRequest, MtpPack, RequestStatus
from allocation.services import decide_waiting_requests, pack_recipe
from allocation.tests.test_compatibility import SPEC_APPLIES
from shared_events import topics
from shared_events.django.models import OutboxEvent
from shared_events.enums import BloodGroup, Component
from shared_events.envelope import parse_event
from shared_events.testing import requested_payload

GROUPS = [g.value for g in BloodGroup]
COMPONENTS = [c.value for c in Component]

ATTRIBUTES = ["IRRADIATED", "CMV_NEGATIVE", "HT_NEGATIVE"]  # a few keep the search space dense
REQUIREMENTS = ["IRRADIATED", "CMV_NEGATIVE", "LEUKOREDUCED"]
unit_specs = st.lists(
    st.tuples(
        st.sampled_from(COMPONENTS[:4]),  # whole blood, red cells, plasma, platelets keep the search space dense
        st.sampled_from(GROUPS),
        st.integers(min_value=-24, max_value=24 * 20),  # hours to expiry; some already past
        st.lists(st.sampled_from(ATTRIBUTES), unique=True, max_size=2),
        st.lists(st.sampled_from(["K", "E"]), unique=True, max_size=2),
    ),
    min_size=0,
    max_size=40,
)
steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("request"),
            st.sampled_from(COMPONENTS[:4]),
            st.sampled_from([*GROUPS, "UNKNOWN"]),
            st.integers(min_value=1, max_value=6),
            st.sampled_from(["EMERGENCY", "SCHEDULED"]),
            st.booleans(),
            st.integers(min_value=1, max_value=24 * 10),  # needed_by, hours ahead
            st.booleans(),  # group_confirmed
            st.booleans(),  # rhd_negative_required
            st.lists(st.sampled_from(REQUIREMENTS), unique=True, max_size=2),
            st.lists(st.sampled_from(["K", "E"]), unique=True, max_size=1),
        ),
        st.tuples(st.just("mtp"), st.sampled_from([*GROUPS, "UNKNOWN"]), st.booleans(), st.booleans()),
        st.tuples(st.just("pack"), st.integers(min_value=0, max_value=30), st.integers(min_value=2, max_value=4)),
        st.tuples(st.just("stop"), st.integers(min_value=0, max_value=30)),
        st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=30)),
        st.tuples(st.just("sweep")),
    ),
    min_size=1,
    max_size=25,
)


class Rollback(Exception):
    pass


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(units=unit_specs, stream=steps)
def test_random_streams_never_break_the_allocation_invariants(units, stream):
    try:
        with transaction.atomic():
            check_stream(units, stream)
            raise Rollback  # each example starts from an empty database
    except Rollback:
        pass


def check_stream(units, stream) -> None:
    now = datetime.now(UTC)
    created = [
        UnitFactory(
            component=component,
            blood_group=group,
            collected_at=now - timedelta(days=30),
            expires_at=now + timedelta(hours=hours),
            special_attributes=attributes,
            antigen_negative=antigens,
        )
        for component, group, hours, attributes, antigens in units
    ]
    initially_usable = sum(1 for u in created if u.expires_at > now)
    sent: list[dict] = []
    mtps: list[dict] = []
    for step in stream:
        if step[0] == "request":
            _, component, group, count, priority, partial, ahead, confirmed, rhd_neg, needs, antigens = step
            extra = {"needed_by": (now + timedelta(hours=ahead)).isoformat()} if priority == "SCHEDULED" else {}
            if group == "UNKNOWN":
                extra["authorised_by"] = "dr_khan"
            payload = requested_payload(
                component=component,
                blood_group=group,
                units=count,
                priority=priority,
                allow_partial=partial,
                group_confirmed=confirmed,
                rhd_negative_required=rhd_neg,
                special_requirements=needs,
                antigen_negative=antigens,
                **extra,
            )
            HANDLERS[topics.REQUESTED](make_event(topics.REQUESTED, payload))
            sent.append(payload)
        elif step[0] == "mtp":
            _, group, confirmed, rhd_neg = step
            payload = requested_payload(
                protocol="MTP",
                blood_group=group,
                authorised_by="dr_khan",
                group_confirmed=confirmed,
                rhd_negative_required=rhd_neg,
            )
            del payload["component"], payload["units"]
            HANDLERS[topics.REQUESTED](make_event(topics.REQUESTED, payload))
            sent.append(payload)
            mtps.append(payload)
        elif step[0] in ("pack", "stop") and mtps:
            target = mtps[step[1] % len(mtps)]
            ids = {"request_id": target["request_id"], "hospital_id": target["hospital_id"]}
            if step[0] == "pack":
                data = ids | {"pack": step[2], "requested_by": "s", "requested_at": now.isoformat()}
                HANDLERS[topics.MTP_PACK_REQUESTED](make_event(topics.MTP_PACK_REQUESTED, data))
            else:
                data = ids | {"stopped_by": "s", "stopped_at": now.isoformat()}
                HANDLERS[topics.MTP_STOPPED](make_event(topics.MTP_STOPPED, data))
        elif step[0] == "cancel" and sent:
            target = sent[step[1] % len(sent)]
            HANDLERS[topics.CANCELLED](
                make_event(topics.CANCELLED, cancelled_payload(target["request_id"], target["hospital_id"]))
            )
        elif step[0] == "sweep":
            expire_units()
    decide_waiting_requests()

    live = list(Allocation.objects.filter(released_at__isnull=True).select_related("unit", "request"))
    assert len({a.unit_id for a in live}) == len(live), "a unit in two live allocations"
    assert Unit.objects.filter(status=UnitStatus.ALLOCATED).count() == len(live)
    # Released units may be allocated again (a cancel, an MTP stop): the live allocations never exceed the stock.
    assert len(live) <= initially_usable, "more allocated than was available"
    for allocation in Allocation.objects.select_related("unit", "request"):
        check_allocation(allocation.unit, allocation.request, allocation.pack)
    recipe = pack_recipe()
    for request in BankRequest.objects.all():
        assert request.status != RequestStatus.WAITING
        allocated = request.allocations.count()
        assert allocated == request.units_allocated
        if request.is_mtp:
            for pack in request.packs.all():
                in_pack = request.allocations.filter(pack=pack.number)
                assert in_pack.count() == pack.units_allocated <= pack.units_requested
                for component, count in recipe.contents(pack.number):
                    assert in_pack.filter(unit__component=component).count() <= count
            if request.mtp_stopped_at or request.cancelled_at:
                assert not request.allocations.filter(released_at__isnull=True, unit__status="ALLOCATED").exists()
            continue
        assert allocated <= (request.units_requested or 0)
        if request.status == RequestStatus.APPROVED:
            assert allocated == request.units_requested
        if request.status == RequestStatus.PARTIALLY_APPROVED:
            assert request.allow_partial and 0 < allocated < request.units_requested
        if request.cancelled_at is not None:
            assert not request.allocations.filter(released_at__isnull=True).exists()
    decisions = [
        (row.event_id, parse_event(bytes(row.value)).data.pack)
        for row in OutboxEvent.objects.filter(event_type__in=[topics.APPROVED, topics.REJECTED])
    ]
    expected = BankRequest.objects.count() + MtpPack.objects.exclude(number=1).count()
    assert len({event_id for event_id, _ in decisions}) == expected, "a request or pack decided twice (or never)"


def check_allocation(unit, request, pack) -> None:
    """One allocated unit against its request, stated independently of allocation.compatibility."""
    component = Component(unit.component)
    if request.is_mtp:
        assert pack is not None and component in (Component.RED_CELLS, Component.PLASMA, Component.PLATELETS)
    else:
        assert pack is None and unit.component == request.component
    assert unit.expires_at > request.decided_at, "an expired unit was allocated"
    needs = {r for r in request.special_requirements if unit.component in SPEC_APPLIES[r]}
    assert needs <= set(unit.special_attributes), "a unit lacking a required attribute"
    if component in (Component.RED_CELLS, Component.WHOLE_BLOOD):
        assert set(request.antigen_negative) <= set(unit.antigen_negative), "a unit not typed negative as required"
    donor = BloodGroup(unit.blood_group)
    unknown = request.blood_group == "UNKNOWN"
    if not unknown and request.group_confirmed:
        assert is_compatible(component, BloodGroup(request.blood_group), donor)
        if request.priority == "SCHEDULED" and not request.is_mtp:
            assert not is_emergency_reserve(component, BloodGroup(request.blood_group), donor)
    else:
        rhd_negative_only = request.rhd_negative_required if unknown else request.blood_group.endswith("-")
        if component == Component.RED_CELLS:
            assert donor.abo == "O", "a non-O red cell on an unknown or unconfirmed group"
            assert not (rhd_negative_only and donor.rhd_positive)
        elif component == Component.PLASMA:
            assert donor.abo == "AB" or (donor.abo == "A" and "HT_NEGATIVE" in unit.special_attributes)
        elif component == Component.PLATELETS:
            assert not (rhd_negative_only and donor.rhd_positive)
        else:
            assert component == Component.CRYO, "whole blood on an unknown or unconfirmed group"
    if request.priority == "SCHEDULED" and not request.is_mtp:
        assert unit.expires_at >= request.needed_by
