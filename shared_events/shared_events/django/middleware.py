"""Middleware every service runs: request latency metrics and the correlation id.

Both work under WSGI (gunicorn) and ASGI (uvicorn, the notification service's
live feed) without forcing a sync/async switch.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction
from django.core.signals import request_finished
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase
from django.utils.decorators import sync_and_async_middleware

from shared_events.django import metrics
from shared_events.django.logging import NO_CORRELATION
from shared_events.django.logging import correlation_id as current_correlation_id

HEADER = "X-Correlation-ID"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
UNMATCHED_ROUTE = "<unmatched>"

GetResponse = Callable[[HttpRequest], HttpResponseBase] | Callable[[HttpRequest], Awaitable[HttpResponseBase]]


def route_of(request: HttpRequest) -> str:
    """The URL's name (``bloodrequest-detail``) or pattern, never the raw path (ids would explode the series)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNMATCHED_ROUTE  # 404s, static files served by WhiteNoise
    return match.view_name or match.route or UNMATCHED_ROUTE


def _observe(request: HttpRequest, response: HttpResponseBase, started: float) -> None:
    metrics.HTTP_REQUEST_SECONDS.labels(request.method, route_of(request), str(response.status_code)).observe(
        time.perf_counter() - started
    )


@sync_and_async_middleware
def request_metrics(get_response: GetResponse) -> GetResponse:
    """``http_request_duration_seconds`` by method, route and status."""
    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> HttpResponseBase:
            started = time.perf_counter()
            response = await get_response(request)
            _observe(request, response, started)
            return response

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = get_response(request)
        _observe(request, response, started)
        return response

    return middleware


def incoming_correlation_id(request: HttpRequest) -> str:
    """The caller's ``X-Correlation-ID`` when it is a sane token, else a new id."""
    given = request.headers.get(HEADER, "")
    return given if _SAFE_ID.match(given) else uuid.uuid4().hex


@sync_and_async_middleware
def correlation_id(get_response: GetResponse) -> GetResponse:
    """Log lines of a web request carry its correlation id; the response echoes it in ``X-Correlation-ID``.

    The id stays set until the response is closed (``request_finished``), so
    Django's own request log ("Not Found: ...", written after the middleware
    returned) and a streamed body carry it too.
    """
    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> HttpResponseBase:
            value = incoming_correlation_id(request)
            current_correlation_id.set(value)  # this request's task only
            response = await get_response(request)
            response[HEADER] = value
            return response

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponseBase:
        value = incoming_correlation_id(request)
        current_correlation_id.set(value)
        response = get_response(request)
        response[HEADER] = value
        return response

    return middleware


@receiver(request_finished)
def _forget_correlation_id(**_kwargs: object) -> None:
    current_correlation_id.set(NO_CORRELATION)  # a WSGI thread serves the next request with a clean slate
