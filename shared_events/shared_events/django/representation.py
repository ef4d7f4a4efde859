"""Serialize model instances for a response without rebuilding the serializer's fields each time.

``Serializer(instance).data`` deep-copies and re-creates every declared field, and a
``ModelSerializer`` introspects its model again, for every instance: for a request
detail with some thirty fields and five nested lists, that is most of a POST's CPU
(measured with cProfile in the bench's issue 15 work). ``represent`` keeps one instance
of each serializer class whose fields are built once and then only read, so it is safe
for threads, and gives the same output as ``.data``.

Only for read-only serializers that do not read ``self.context`` (no request, no URLs).
"""

from __future__ import annotations

import functools
from typing import Any

from rest_framework import serializers


@functools.cache
def _writer(serializer_class: type[serializers.BaseSerializer]) -> serializers.BaseSerializer:
    serializer = serializer_class()
    serializer.fields  # noqa: B018 - built here, before threads share the instance
    return serializer


def represent(serializer_class: type[serializers.BaseSerializer], instance: Any) -> dict[str, Any]:
    """What ``serializer_class(instance).data`` gives."""
    return _writer(serializer_class).to_representation(instance)
