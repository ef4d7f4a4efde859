"""Anonymous-access probes for the security tests of every service.

``schema_operations`` lists every operation of a service's OpenAPI schema (generated
in-process by drf-spectacular, exactly what ``/api/schema/`` serves) with its path
parameters filled with plausible values; ``routed_urls`` lists every URL the service
routes (API, dashboard, admin, accounts, live feed), including plain Django views the
schema does not show. A test calls each without credentials and expects 401 or a
redirect to a login page, so an endpoint added later with ``AllowAny`` fails it.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

# Every service's URLs open without credentials (shared_events.django.urls): health, metrics (scraped
# inside the network, see docs/runbook.md), the token login, the OpenAPI schema and Swagger UI.
OPEN_URL_NAMES = frozenset({"healthz", "readyz", "metrics", "auth-token", "schema", "swagger-ui"})
OPEN_OPERATIONS = frozenset({"POST /api/v1/auth/token/"})
# Any authenticated user may end its own tokens, whatever its role.
EVERY_USER_OPERATIONS = frozenset({"POST /api/v1/auth/logout/", "POST /api/v1/auth/logout-all/"})
SAMPLE_UUID = "3f2b8c1e-5d4a-4b6f-9e7d-1a2b3c4d5e6f"
HTTP_METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    path: str  # parameters filled in
    template: str  # as in the schema

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def openapi_schema() -> dict[str, Any]:
    """The service's full schema, as ``/api/schema/`` serves it (postprocessing hooks included)."""
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _sample(parameter: dict[str, Any]) -> str:
    schema = parameter.get("schema", {})
    if schema.get("type") == "integer":
        return "1"
    return SAMPLE_UUID  # matches uuid formats, DRF's default lookup "[^/.]+" and the services' id patterns


def schema_operations(schema: dict[str, Any]) -> list[Operation]:
    operations = []
    for template, item in schema["paths"].items():
        for method in HTTP_METHODS:
            if method not in item:
                continue
            parameters = [*item.get("parameters", []), *item[method].get("parameters", [])]
            path = template
            for parameter in parameters:
                if parameter.get("in") == "path":
                    path = path.replace("{" + parameter["name"] + "}", _sample(parameter))
            assert "{" not in path, f"unfilled path parameter in {template}"
            operations.append(Operation(method.upper(), path, template))
    return operations


@dataclass(frozen=True)
class RoutedUrl:
    name: str  # "namespace:name", or the view's dotted path when unnamed
    path: str  # a concrete path that resolves to the view

    def __str__(self) -> str:
        return f"{self.name} ({self.path})"


def _patterns(resolvers: list[Any], prefix: str = "", namespace: str = "") -> list[tuple[str, str, Any]]:
    """(full regex, qualified name, callback) for every URL pattern, recursively."""
    from django.urls import URLResolver

    found = []
    for entry in resolvers:
        regex = prefix + entry.pattern.regex.pattern.lstrip("^")
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            found += _patterns(entry.url_patterns, regex, inner)
        else:
            callback = entry.callback
            name = f"{namespace}{entry.name}" if entry.name else f"{callback.__module__}.{callback.__qualname__}"
            found.append((regex, name, callback))
    return found


def routed_urls() -> tuple[list[RoutedUrl], list[str]]:
    """A concrete path for every routed view, and the names of those no sample value could fill."""
    from django.apps import apps
    from django.urls import Resolver404, get_resolver, resolve
    from django.utils.regex_helper import normalize

    candidates = [SAMPLE_UUID, "1", *(config.label for config in apps.get_app_configs()), "x"]
    urls, unfilled = [], []
    for regex, name, callback in _patterns(get_resolver().url_patterns):
        path = None
        for template, params in normalize(regex):
            for values in itertools.product(candidates, repeat=len(params)):
                attempt = "/" + template % dict(zip(params, values, strict=True))
                try:
                    match = resolve(attempt)
                except Resolver404:
                    continue
                if match.func is callback and re.fullmatch(regex, attempt[1:]):
                    path = attempt
                    break
            if path:
                break
        if path:
            urls.append(RoutedUrl(name, path))
        else:
            unfilled.append(name)
    return urls, unfilled


LOGIN_PATHS = ("/accounts/login/", "/admin/login/")
REDIRECTS = {301, 302, 303, 307, 308}


def anonymous_answer(client: Any, method: str, path: str) -> str:
    """What an anonymous caller gets: "refused" (401, or redirects ending at a login page) or the status."""
    from urllib.parse import urlsplit

    response = client.generic(method, path)
    for _ in range(3):  # e.g. /  ->  /dashboard/  ->  /accounts/login/?next=/dashboard/
        if response.status_code not in REDIRECTS:
            break
        location = urlsplit(response["Location"]).path
        if location.startswith(LOGIN_PATHS):
            return "refused"
        response = client.get(location)
    return "refused" if response.status_code == 401 else str(response.status_code)


def url_access_problems(client: Any, public: set[str]) -> list[str]:
    """What is wrong with anonymous access to the routed URLs: one outside ``public`` that an anonymous
    GET or POST gets into (405 is no way in), a public one that fails on GET, a ``public`` name not routed.
    """
    urls, unfilled = routed_urls()
    problems = [f"{name}: no sample path fills its pattern" for name in unfilled]
    problems += [f"{name}: listed as public but not routed" for name in public - {url.name for url in urls}]
    for url in urls:
        if url.name in public:
            status = client.get(url.path).status_code
            if status >= 500:
                problems.append(f"{url}: public page answers GET with {status}")
            continue
        answers = {method: anonymous_answer(client, method, url.path) for method in ("GET", "POST")}
        if not set(answers.values()) <= {"refused", "405"} or "refused" not in answers.values():
            problems.append(f"{url}: {answers}")
    return problems


def protected_operations(*, including: set[str]) -> list[Operation]:
    """Every operation of the service's schema that needs credentials; fails unless ``including`` are among them
    (so a schema that lost its operations cannot pass a security test by having none)."""
    operations = [op for op in schema_operations(openapi_schema()) if str(op) not in OPEN_OPERATIONS]
    missing = including - {str(op) for op in operations}
    assert not missing, f"operations missing from the schema: {sorted(missing)}"
    return operations


def answers_other_than(client: Any, operations: list[Operation], expected: int) -> dict[str, int]:
    """``{operation: status}`` for every operation ``client`` does not get ``expected`` from; ``{}`` when all do.

    Expecting anything but 401 (a logged-in caller), the logouts are left out: every user may log out."""
    if expected != 401:
        operations = [op for op in operations if str(op) not in EVERY_USER_OPERATIONS]
    answers = {str(op): client.generic(op.method, op.path).status_code for op in operations}
    return {op: status for op, status in answers.items() if status != expected}


def token_client(username: str, password: str) -> Any:
    """A DRF test client carrying a real token from the service's ``POST /api/v1/auth/token/``."""
    from rest_framework.test import APIClient

    response = APIClient().post("/api/v1/auth/token/", {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    return client
