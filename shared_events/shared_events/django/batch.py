"""One consumer batch: state that the handlers of a batch share, and work they leave to its end.

The consumer runs a batch of events in one transaction (``EventConsumer._handle_together``)
inside ``scope()``. A handler that needs the same thing for every event (a lock taken once,
a row read once) asks ``shared(key, make, finish)``: the first call of the batch makes it,
later calls get the same object, and ``finish`` runs once at the end of the batch, still
inside its transaction, before the commit. Nothing runs if the batch raises: its
transaction rolls back, and the consumer handles each event again on its own, in a new scope.

Outside a batch (an API call, a periodic task, a test calling a service) ``shared``
returns None and the caller does the work at once. ``events()`` gives the consumer's
batch, so that a handler can read what every event of it needs in one statement.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

_state = threading.local()


@contextmanager
def scope(events: Sequence[Any] = ()) -> Iterator[None]:
    """Open a batch of ``events`` (nested calls join the outer one); run the finishers when it ends without error."""
    if getattr(_state, "shared", None) is not None:
        yield
        return
    _state.shared, _state.finishers, _state.events = {}, [], tuple(events)
    try:
        yield
        for finish in _state.finishers:
            finish()
    finally:
        _state.shared = _state.finishers = _state.events = None


def events() -> Sequence[Any]:
    """The events of the consumer's batch, in order (empty outside one, or in a batch of other work)."""
    return getattr(_state, "events", None) or ()


def shared(key: str, make: Callable[[], T], finish: Callable[[T], Any] | None = None) -> T | None:
    """The batch's object under ``key``, made on first use (None outside a batch)."""
    objects = getattr(_state, "shared", None)
    if objects is None:
        return None
    if key not in objects:
        objects[key] = value = make()
        if finish is not None:
            _state.finishers.append(lambda: finish(value))
    return objects[key]
