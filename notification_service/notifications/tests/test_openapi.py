"""The served OpenAPI schema documents every operation, with examples and the token auth Swagger UI uses."""

import pytest
from rest_framework.test import APIClient

from shared_events.testing import undocumented_operations

pytestmark = pytest.mark.django_db


def test_every_operation_has_a_summary_security_and_examples():
    response = APIClient().get("/api/schema/?format=json")  # public: the contract, not the data

    assert response.status_code == 200
    schema = response.json()
    operations = [(method, path) for path, ops in schema["paths"].items() for method in ops]
    assert len(operations) >= 6
    assert undocumented_operations(schema) == []


def test_the_token_scheme_is_the_authorization_header_and_says_how_to_get_a_token():
    schema = APIClient().get("/api/schema/?format=json").json()

    token_auth = schema["components"]["securitySchemes"]["tokenAuth"]
    assert (token_auth["type"], token_auth["in"], token_auth["name"]) == ("apiKey", "header", "Authorization")
    assert "POST /api/v1/auth/token/" in token_auth["description"]
    assert "Token <key>" in token_auth["description"]
    assert "security" not in schema["paths"]["/api/v1/auth/token/"]["post"]  # logging in needs no token
