"""shared_events.testing.wait_for: polls until true, and says what was awaited when it times out."""

from __future__ import annotations

import pytest

from shared_events.testing import wait_for


def test_wait_for_returns_the_first_truthy_result():
    results = iter([0, [], "done"])
    assert wait_for(lambda: next(results), timeout=5, interval=0) == "done"


def test_a_callable_message_is_asked_at_the_timeout_for_what_is_still_missing():
    progress = {"left": 3}
    with pytest.raises(pytest.fail.Exception, match="still 3 left"):
        wait_for(lambda: False, timeout=0, interval=0, message=lambda: f"still {progress['left']} left")
