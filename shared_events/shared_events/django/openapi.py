"""OpenAPI schema post-processing every service shares (a drf-spectacular hook).

``document_common`` runs after the schema is generated and adds what every
endpoint has in common, so the views only declare their own success and
business-error responses:

* the ``tokenAuth`` scheme says how to get a token and what to paste into
  Swagger UI's "Authorize" dialog;
* the errors the framework itself answers with, each with a schema and an
  example: 400 (invalid body or filter), 401/403 (credentials, role),
  404 (path id, or a page past the end), 413 (body over 64 KiB), 415 (not JSON);
* a business error a view declared without a body (e.g. ``409: None``) gets
  the ``{"detail": ...}`` body it really has.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme

LOGIN_PATH = "/api/v1/auth/token/"

TOKEN_AUTH_DESCRIPTION = (
    "API token: send the header `Authorization: Token <key>`.\n\n"
    f"Get a key with `POST {LOGIN_PATH}` and the body "
    '`{"username": "...", "password": "..."}` (the response is `{"token": "<key>", "expiry": ...}`); '
    "in Swagger UI, run that operation first, then click **Authorize** and paste "
    "`Token <key>`, the word `Token`, a space and the key. Tokens are per service: "
    "log in to each service you call. A token expires at its `expiry` and ends sooner on "
    "`POST /api/v1/auth/logout/` (this token), `POST /api/v1/auth/logout-all/` (every token of the user) "
    "or a password change."
)


class TokenAuthScheme(KnoxTokenScheme):
    """django-rest-knox's token in the schema under the name ``tokenAuth`` (clients and Swagger UI know it)."""

    name = "tokenAuth"
    priority = 1
    match_subclasses = True  # shared_events.django.token_auth.ExpiringTokenAuthentication


ERROR_DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
FIELD_ERRORS = {
    "description": "DRF validation errors: messages by field (`non_field_errors` for the whole body), "
    "a list of such objects for a list body, or `detail` for a body that is not valid JSON.",
    "oneOf": [{"type": "object", "additionalProperties": {}}, {"type": "array", "items": {}}],
}

# status: (description, schema name, example)
COMMON_ERRORS: dict[str, tuple[str, str, Any]] = {
    "400": (
        "Invalid input; nothing was changed.",
        "FieldErrors",
        {"units": ["Ensure this value is less than or equal to 20."]},
    ),
    "401": (
        "No or invalid credentials.",
        "ErrorDetail",
        {"detail": "Authentication credentials were not provided."},
    ),
    "403": (
        "Authenticated, but this user's role may not do this.",
        "ErrorDetail",
        {"detail": "You do not have permission to perform this action."},
    ),
    "404": (
        "Not found (or another hospital's).",
        "ErrorDetail",
        {"detail": "No BloodRequest matches the given query."},
    ),
    "413": (
        "Request body over 64 KiB; nothing was changed.",
        "ErrorDetail",
        {"detail": "Request body too large: the limit is 65536 bytes."},
    ),
    "415": (
        "The body is not JSON.",
        "ErrorDetail",
        {"detail": 'Unsupported media type "text/plain" in request.'},
    ),
}


def _error_response(description: str, schema: str, example: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}, "example": example},
        },
    }


def _common_statuses(path: str, operation: dict[str, Any]) -> list[str]:
    params = operation.get("parameters", [])
    statuses = []
    if operation.get("security"):
        statuses += ["401", "403"]
    if "requestBody" in operation or any(p["in"] == "query" and p["name"] != "page" for p in params):
        statuses.append("400")
    if any(p["in"] == "path" for p in params) or any(p["name"] == "page" for p in params):
        statuses.append("404")
    if "requestBody" in operation:
        statuses += ["413", "415"]
    return statuses


def document_common(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook (see the module docstring)."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update({"ErrorDetail": ERROR_DETAIL, "FieldErrors": FIELD_ERRORS})
    schemes = components.setdefault("securitySchemes", {})
    if "tokenAuth" in schemes:
        schemes["tokenAuth"]["description"] = TOKEN_AUTH_DESCRIPTION
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            for param in operation.get("parameters", []):
                if param["in"] == "query" and param["name"] != "page":
                    param["allowEmptyValue"] = True  # django-filter reads `?status=` as no filter
            # An open operation (the token login) says so: ``security: []`` overrides any default.
            operation.setdefault("security", [])
            responses = operation.setdefault("responses", {})
            for status in _common_statuses(path, operation):
                responses.setdefault(status, _error_response(*COMMON_ERRORS[status]))
            for status, response in responses.items():
                if status.startswith("4") and not response.get("content"):
                    description = response.get("description") or "Refused; nothing was changed."
                    responses[status] = _error_response(description, "ErrorDetail", {"detail": description})
    return result
