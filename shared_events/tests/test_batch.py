"""shared_events.django.batch: what a consumer batch's handlers share, and what runs at its end."""

from __future__ import annotations

import pytest

from shared_events.django import batch


def test_outside_a_batch_nothing_is_shared():
    assert batch.shared("key", dict) is None


def test_a_batch_makes_each_shared_object_once_and_finishes_it_once_at_the_end():
    made, finished = [], []

    def make() -> list[str]:
        made.append(1)
        return []

    with batch.scope():
        first = batch.shared("counter", make, finish=finished.append)
        first.append("a")
        with batch.scope():  # a nested scope joins the outer batch
            second = batch.shared("counter", make, finish=finished.append)
            second.append("b")
        assert finished == []  # not at the end of the nested block
    assert made == [1]
    assert first is second
    assert finished == [["a", "b"]]
    assert batch.shared("counter", make) is None  # the batch is over


def test_a_batch_that_raises_finishes_nothing_and_shares_nothing_afterwards():
    finished = []
    with pytest.raises(RuntimeError), batch.scope():
        batch.shared("counter", list, finish=finished.append)
        raise RuntimeError("a handler failed")
    assert finished == []
    with batch.scope():
        assert batch.shared("counter", lambda: ["fresh"]) == ["fresh"]
