"""Reads of the bank's requests."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from allocation.models import Allocation, BankRequest


def requests() -> QuerySet[BankRequest]:
    """Requests newest first, with their allocations (and units) prefetched."""
    return (
        BankRequest.objects.defer("decision_event")
        .prefetch_related(Prefetch("allocations", queryset=Allocation.objects.select_related("unit")))
        .order_by("-received_at")
    )
