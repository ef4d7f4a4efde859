from __future__ import annotations

import django_filters
from inventory.models import COMPONENT_CHOICES, GROUP_CHOICES
from inventory.permissions import IsBankStaff
from rest_framework import viewsets

from allocation import selectors
from allocation.api.serializers import BankRequestSerializer
from allocation.models import PRIORITY_CHOICES, BankRequest, RequestStatus


class BankRequestFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=RequestStatus.choices)
    priority = django_filters.ChoiceFilter(choices=PRIORITY_CHOICES)
    component = django_filters.ChoiceFilter(choices=COMPONENT_CHOICES)
    blood_group = django_filters.ChoiceFilter(choices=GROUP_CHOICES)
    hospital_id = django_filters.UUIDFilter()

    class Meta:
        model = BankRequest
        fields = ["status", "priority", "component", "blood_group", "hospital_id"]


class BankRequestViewSet(viewsets.ReadOnlyModelViewSet):
    """Requests as the bank saw them, with decision and allocations."""

    permission_classes = [IsBankStaff]
    serializer_class = BankRequestSerializer
    filterset_class = BankRequestFilter
    lookup_field = "request_id"

    def get_queryset(self):
        return selectors.requests()
