"""The embedded broker keeps nothing: a restart loses every topic and offset, and no request."""

from __future__ import annotations

from api_client import ApiClient
from test_resilience import _all_decided, _request

from shared_events.embedded_broker import start_broker
from shared_events.testing import wait_for

# The hospital's watchdog re-publishes a still-PENDING request after 5 s here.
STACK_ENV = {"REQUEST_REPUBLISH_AFTER_SECONDS": "5"}


def test_requests_made_before_and_during_a_broker_restart_are_all_decided(stack, stmary: ApiClient):
    before = _request(stmary)
    wait_for(lambda: _all_decided(stmary, [before]), timeout=60, message="a decision before the restart")

    stack.broker.stop()
    during = _request(stmary)  # the hospital accepts it: it waits in the outbox
    stack.broker = start_broker(stack.broker_port, log_path=str(stack.log_dir / "broker-restarted.log"))
    result = stack.manage("hospital", "create_topics")
    assert result.returncode == 0, result.stderr
    after = _request(stmary)

    decided = wait_for(
        lambda: _all_decided(stmary, [during, after]), timeout=120, message="every request decided after the restart"
    )
    assert [d["status"] for d in decided] == ["APPROVED", "APPROVED"]
    assert _all_decided(stmary, [before])[0]["status"] == "APPROVED"
