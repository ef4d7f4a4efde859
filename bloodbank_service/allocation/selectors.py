"""Reads of the bank's requests."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from allocation.models import Allocation, BankRequest, MtpPack


def requests() -> QuerySet[BankRequest]:
    """Requests newest first, with their allocations (and units) and MTP packs prefetched."""
    return (
        BankRequest.objects.defer("decision_event")
        .prefetch_related(
            Prefetch("allocations", queryset=Allocation.objects.select_related("unit")),
            Prefetch("packs", queryset=MtpPack.objects.defer("decision_event")),
        )
        .order_by("-received_at")
    )
