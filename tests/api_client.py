"""A small JSON-over-HTTP client for the services' REST APIs (token auth)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass
class Response:
    status: int
    body: Any


@dataclass
class ApiClient:
    base_url: str
    token: str | None = None

    @classmethod
    def login(cls, base_url: str, username: str) -> ApiClient:
        password = os.environ.get("DEMO_PASSWORD", "demo-password")
        response = cls(base_url).post("/api/v1/auth/token/", {"username": username, "password": password})
        assert response.status == 200, f"login of {username} at {base_url} failed: {response}"
        return cls(base_url, response.body["token"])

    def get(self, path: str) -> Response:
        return self._call("GET", path)

    def post(self, path: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Response:
        return self._call("POST", path, body or {}, headers)

    def _call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Response:
        request = urllib.request.Request(  # noqa: S310 - local test URLs only
            self.base_url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", "Accept": "application/json"} | (headers or {}),
        )
        if self.token:
            request.add_header("Authorization", f"Token {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return Response(response.status, _json(response.read()))
        except urllib.error.HTTPError as error:
            return Response(error.code, _json(error.read()))


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")
