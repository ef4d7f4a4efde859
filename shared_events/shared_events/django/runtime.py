"""Process start-up: the garbage collector settled once the application is loaded.

A Django process holds a few hundred thousand long-lived objects once its
apps, models, URLs and serializers are loaded, and CPython's collector walks
them again at every full collection: about 0.7 ms of every request POST
here, of 7.4. Frozen after start-up (``gc.freeze``), they are left out of
every collection; with a larger first generation, collections run less often.
Cycles made while serving are still collected; only the start-up set is kept.
"""

from __future__ import annotations

import gc

FIRST_GENERATION = 50_000
"""Allocations (net) between two young collections: CPython's default is 700."""


def settle_garbage_collector() -> None:
    """Call once the application is loaded (the WSGI/ASGI module, the worker's start)."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - import every view now, so that they are frozen too
    gc.collect()
    gc.freeze()
    gc.set_threshold(FIRST_GENERATION, 20, 20)
