"""Malformed events on every topic notifications consume go to dlq.notification; the consumer keeps going."""

import pytest

from notifications.handlers import HANDLERS
from notifications.tests import factories
from shared_events import topics
from shared_events.testing import assert_malformed_events_dead_lettered

pytestmark = pytest.mark.django_db(transaction=True)


def test_malformed_events_on_every_consumed_topic_are_dead_lettered_and_a_valid_one_after_is_handled(kafka_topics):
    assert_malformed_events_dead_lettered(service="notification", handlers=HANDLERS, valid=factories.requested())


def test_the_handled_topics_are_the_ones_the_event_contract_lists():
    # docs/asyncapi.json's receive operations come from the registry's consumers.
    assert set(HANDLERS) == topics.consumed_by("notification")
