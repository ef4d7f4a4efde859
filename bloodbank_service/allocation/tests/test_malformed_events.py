"""Malformed events on every topic the bank consumes go to dlq.bloodbank; the consumer keeps going."""

import pytest
from conftest import make_event

from allocation.handlers import HANDLERS
from shared_events import topics
from shared_events.testing import assert_malformed_events_dead_lettered, requested_payload

pytestmark = pytest.mark.django_db(transaction=True)


def test_malformed_events_on_every_consumed_topic_are_dead_lettered_and_a_valid_one_after_is_handled(kafka_topics):
    valid = make_event(topics.REQUESTED, requested_payload())
    assert_malformed_events_dead_lettered(service="bloodbank", handlers=HANDLERS, valid=valid)


def test_the_handled_topics_are_the_ones_the_event_contract_lists():
    # docs/asyncapi.json's receive operations come from the registry's consumers.
    assert set(HANDLERS) == topics.consumed_by("bloodbank")
