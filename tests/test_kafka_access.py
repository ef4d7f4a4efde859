"""The ACLs follow the topic registry, so the registry must name what each service's worker really consumes.

A handler added for a topic the registry does not list as consumed by that service would be
refused by the broker (TOPIC_AUTHORIZATION_FAILED) the first time its worker subscribes; this
fails first. The broker's enforcement itself: shared_events/tests/test_kafka_security.py.
"""

from __future__ import annotations

import json
import secrets

import pytest
from service_commands import manage

from shared_events.topics import consumed_by

SERVICES = ("hospital", "bloodbank", "notification")
HANDLED = (
    "import json; from shared_events.django.config import service_events; "
    "print(json.dumps(sorted(service_events().handlers())))"
)


@pytest.mark.parametrize("service", SERVICES)
def test_each_worker_handles_exactly_the_topics_the_registry_says_it_consumes(service):
    env = {"SECRET_KEY": secrets.token_urlsafe(50), "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres"}
    result = manage(service, "shell", "-c", HANDLED, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == sorted(consumed_by(service))
