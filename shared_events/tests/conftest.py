import threading
import uuid

import pytest

from shared_events.django.consumer import EventConsumer
from tests.testapp.handlers import HANDLERS


@pytest.fixture
def make_consumer(kafka_topics):
    """Build a consumer of the test handlers with its own group and stop flag."""

    def make(**kwargs) -> EventConsumer:
        kwargs.setdefault("group_id", f"test-{uuid.uuid4().hex[:8]}")
        kwargs.setdefault("retry_backoff", 0.01)
        return EventConsumer(handlers=HANDLERS, stop=threading.Event(), **kwargs)

    return make
