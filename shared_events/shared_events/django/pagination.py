"""The page-number pagination every list uses, documented in OpenAPI 3.1 form."""

from __future__ import annotations

from typing import Any

from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    """DRF's ``count/next/previous/results`` pages (``?page=N``).

    Its OpenAPI schema says "string or null" the 3.1 way (DRF writes 3.0's ``nullable``),
    and its example is one page, so that a listed example reads ``next: null`` rather than
    a made-up URL of another API.
    """

    def get_paginated_response_schema(self, schema: Any) -> dict[str, Any]:
        link = {"type": ["string", "null"], "format": "uri", "example": None}
        return {
            "type": "object",
            "required": ["count", "results"],
            "properties": {
                "count": {"type": "integer", "minimum": 0, "example": 1, "description": "Items on all pages."},
                "next": link | {"description": "The next page's URL; null on the last page."},
                "previous": link | {"description": "The previous page's URL; null on the first page."},
                "results": schema,
            },
        }
