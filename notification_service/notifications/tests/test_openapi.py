"""The served OpenAPI schema documents every operation, with examples and the token auth Swagger UI uses."""

import pytest

from shared_events.testing import served_schema, token_scheme_problems, undocumented_operations

pytestmark = pytest.mark.django_db


def test_every_operation_has_a_summary_security_and_examples():
    schema = served_schema()

    assert sum(len(operations) for operations in schema["paths"].values()) >= 6
    assert undocumented_operations(schema) == []


def test_the_token_scheme_is_the_authorization_header_and_says_how_to_get_a_token():
    assert token_scheme_problems(served_schema()) == []
