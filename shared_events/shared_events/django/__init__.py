"""Reusable Django app: outbox, inbox, relay, consumer runner and worker commands.

Add ``"shared_events.django"`` to ``INSTALLED_APPS`` and set ``SHARED_EVENTS``::

    SHARED_EVENTS = {
        "SERVICE": "hospital",                      # dlq.<service>, consumer group
        "SOURCE": "hospital-service",               # CloudEvents source
        "HANDLERS": "blood_requests.handlers.HANDLERS",  # {event type: handler}
        "PERIODIC": [("blood_requests.services.republish_stale_requests", 5.0)],
    }
"""
