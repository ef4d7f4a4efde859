"""Request bodies every service refuses cleanly: too large (413) or nested too deep (400).

Request bodies are refused before they can cost memory or stack:

* a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (64 KiB, set in ``service_settings``)
  is refused with **413** ``{"detail": ...}`` by the ``body_size_limit`` middleware,
  before any view runs, whether the view reads the body or not (Django reads
  at most ``Content-Length`` bytes of a body, so the header is what counts);
* JSON nested deeper than ``MAX_JSON_DEPTH`` is refused with **400** (the
  standard library parser would raise ``RecursionError`` a few hundred levels
  further down, which must never become a 500).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import sync_and_async_middleware
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils import json

MAX_JSON_DEPTH = 32
"""Nesting levels a request body may have (the deepest API body has 3)."""


class BoundedJSONParser(JSONParser):
    """``JSONParser`` that refuses nesting deeper than ``MAX_JSON_DEPTH`` with a 400."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        encoding = get_encoding(parser_context or {})
        raw = stream.read()
        try:
            data = json.loads(raw.decode(encoding), parse_constant=json.strict_constant if self.strict else None)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.") from None
        except ValueError as exc:  # includes UnicodeDecodeError
            raise ParseError(f"JSON parse error - {exc}") from None
        if json_depth(data) > MAX_JSON_DEPTH:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
        return data


def json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0, ``[]`` and ``{}`` are 1); iterative, no recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _refuse_oversized(request: HttpRequest) -> HttpResponse | None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return JsonResponse({"detail": "Invalid Content-Length header."}, status=status.HTTP_400_BAD_REQUEST)
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if length > limit:
        return JsonResponse(
            {"detail": f"Request body too large: the limit is {limit} bytes."},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    return None


@sync_and_async_middleware
def body_size_limit(get_response: Callable[[HttpRequest], Any]) -> Callable[[HttpRequest], Any]:
    """Refuse a request whose ``Content-Length`` is over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` with a JSON 413."""
    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> HttpResponse:
            return _refuse_oversized(request) or await get_response(request)

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponse:
        return _refuse_oversized(request) or get_response(request)

    return middleware
