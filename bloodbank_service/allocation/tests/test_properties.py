"""Property-based tests on PostgreSQL: random inventories and request/cancel streams.

Whatever the stream: never an incompatible unit, never a unit twice, never
more than available, never an expired unit, the O-negative reserve kept.
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
from allocation.models import Allocation, BankRequest, RequestStatus
from allocation.services import decide_waiting_requests
from shared_events import topics
from shared_events.django.models import OutboxEvent
from shared_events.enums import BloodGroup, Component
from shared_events.testing import requested_payload

GROUPS = [g.value for g in BloodGroup]
COMPONENTS = [c.value for c in Component]

unit_specs = st.lists(
    st.tuples(
        st.sampled_from(COMPONENTS[:3]),  # red cells, plasma, whole blood keep the search space dense
        st.sampled_from(GROUPS),
        st.integers(min_value=-24, max_value=24 * 20),  # hours to expiry; some already past
    ),
    min_size=0,
    max_size=40,
)
steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("request"),
            st.sampled_from(COMPONENTS[:3]),
            st.sampled_from(GROUPS),
            st.integers(min_value=1, max_value=6),
            st.sampled_from(["EMERGENCY", "SCHEDULED"]),
            st.booleans(),
            st.integers(min_value=1, max_value=24 * 10),  # needed_by, hours ahead
        ),
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
        )
        for component, group, hours in units
    ]
    initially_usable = sum(1 for u in created if u.expires_at > now)
    sent: list[dict] = []
    for step in stream:
        if step[0] == "request":
            _, component, group, count, priority, partial, ahead = step
            extra = {"needed_by": (now + timedelta(hours=ahead)).isoformat()} if priority == "SCHEDULED" else {}
            payload = requested_payload(
                component=component, blood_group=group, units=count, priority=priority, allow_partial=partial, **extra
            )
            HANDLERS[topics.REQUESTED](make_event(topics.REQUESTED, payload))
            sent.append(payload)
        elif step[0] == "cancel" and sent:
            target = sent[step[1] % len(sent)]
            HANDLERS[topics.CANCELLED](
                make_event(topics.CANCELLED, cancelled_payload(target["request_id"], target["hospital_id"]))
            )
        else:
            expire_units()
    decide_waiting_requests()

    live = list(Allocation.objects.filter(released_at__isnull=True).select_related("unit", "request"))
    assert len({a.unit_id for a in live}) == len(live), "a unit in two live allocations"
    assert Unit.objects.filter(status=UnitStatus.ALLOCATED).count() == len(live)
    assert Allocation.objects.count() <= initially_usable, "more allocated than was available"
    for allocation in Allocation.objects.select_related("unit", "request"):
        unit, request = allocation.unit, allocation.request
        assert unit.component == request.component
        assert is_compatible(
            Component(request.component), BloodGroup(request.blood_group), BloodGroup(unit.blood_group)
        )
        assert unit.expires_at > request.decided_at, "an expired unit was allocated"
        if request.priority == "SCHEDULED":
            assert unit.expires_at >= request.needed_by
            assert not is_emergency_reserve(
                Component(request.component), BloodGroup(request.blood_group), BloodGroup(unit.blood_group)
            )
    for request in BankRequest.objects.all():
        assert request.status != RequestStatus.WAITING
        allocated = request.allocations.count()
        assert allocated == request.units_allocated <= (request.units_requested or 0)
        if request.status == RequestStatus.APPROVED:
            assert allocated == request.units_requested
        if request.status == RequestStatus.PARTIALLY_APPROVED:
            assert request.allow_partial and 0 < allocated < request.units_requested
        if request.cancelled_at is not None:
            assert not request.allocations.filter(released_at__isnull=True).exists()
    decisions = OutboxEvent.objects.filter(event_type__in=[topics.APPROVED, topics.REJECTED])
    assert decisions.values("event_id").distinct().count() == BankRequest.objects.count()
