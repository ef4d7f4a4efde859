"""No secret or default password in production settings, code or the compose file; seed_demo stays
out of production. (``check --deploy`` and the SECRET_KEY requirement are in test_deployment.py.)
"""

from __future__ import annotations

import ast
import re
import secrets
from pathlib import Path

import pytest
import yaml
from service_commands import manage

from shared_events.demo import DEVELOPMENT_PASSWORD

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("hospital", "bloodbank", "notification")
SECRET_NAME = re.compile(r"secret|passw|token|api_?key|credential", re.IGNORECASE)
# The only secret-looking literals in production code, each safe for the reason given.
ALLOWED_LITERALS = {
    # Used only when DEBUG is on; with DEBUG off a missing SECRET_KEY stops the service.
    ("shared_events/shared_events/django/service_settings.py", "secret_key"),
    # The published development login; seed_demo refuses it with DEBUG off (tested below).
    ("shared_events/shared_events/demo.py", "DEVELOPMENT_PASSWORD"),
    # The token login's OpenAPI response example (DRF's documentation sample key), not a credential.
    ("shared_events/shared_events/django/auth.py", "token"),
}


def _production_sources() -> list[Path]:
    """Python that runs in a deployment: the services and shared_events, without tests and dev tooling."""
    roots = [ROOT / f"{service}_service" for service in SERVICES] + [ROOT / "shared_events" / "shared_events"]
    skipped_dirs = {"tests", "migrations", "bench", "testing_support"}
    skipped_files = {"test_settings.py", "conftest.py", "testing.py"}
    return [
        path
        for root in roots
        for path in root.rglob("*.py")
        if not skipped_dirs & set(path.relative_to(root).parts) and path.name not in skipped_files
    ]


def _secret_literals(path: Path) -> list[tuple[str, str, int]]:
    """(file, name, line) for each string literal bound to a secret-looking name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        pairs: list[tuple[str, ast.AST]] = []
        if isinstance(node, ast.Assign):
            pairs = [(target.id, node.value) for target in node.targets if isinstance(target, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            pairs = [(node.target.id, node.value)]
        elif isinstance(node, ast.keyword) and node.arg:
            pairs = [(node.arg, node.value)]
        elif isinstance(node, ast.Dict):
            pairs = [(k.value, v) for k, v in zip(node.keys, node.values, strict=True) if isinstance(k, ast.Constant)]
        for name, value in pairs:
            literal = isinstance(value, ast.Constant) and isinstance(value.value, str) and len(value.value) >= 4
            if isinstance(name, str) and SECRET_NAME.search(name) and literal:
                found.append((str(path.relative_to(ROOT)), name, value.lineno))
    return found


def test_production_code_holds_no_secret_or_password_literal():
    sources = _production_sources()
    assert len(sources) > 50  # the walk found the services' code
    found = [hit for path in sources for hit in _secret_literals(path)]
    assert [hit for hit in found if hit[:2] not in ALLOWED_LITERALS] == []
    assert {hit[:2] for hit in found} == ALLOWED_LITERALS  # the allowance is not stale


def _compose_environments() -> dict[str, dict[str, str]]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return {name: spec.get("environment") or {} for name, spec in compose["services"].items()}


def test_compose_takes_every_secret_from_the_environment_without_a_default():
    environments = _compose_environments()
    secret_values = {
        f"{service}.{key}": str(value)
        for service, env in environments.items()
        for key, value in env.items()
        if SECRET_NAME.search(key)
    }
    assert any(key.endswith(".SECRET_KEY") for key in secret_values)
    literal = {key: value for key, value in secret_values.items() if "${" not in value}
    assert literal == {}
    with_default = {
        key: default for key, value in secret_values.items() for default in re.findall(r"\$\{\w+:?-([^}]*)\}", value)
    }
    # An empty default is "not set": an optional secret (KAFKA_SASL_PASSWORD without SASL) that
    # the service ignores when empty. Any other default would be a password written in the file.
    assert {key: default for key, default in with_default.items() if default} == {}
    assert {key.split(".")[1] for key in with_default} <= {"KAFKA_SASL_PASSWORD"}


def test_compose_runs_every_process_with_debug_off():
    for service, env in _compose_environments().items():
        if "SECRET_KEY" in env:
            assert str(env.get("DEBUG")) == "0", service


PRODUCTION = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    # A database that does not exist: seed_demo must refuse before it touches one.
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/no_such_database_for_seed_demo",
}


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("demo_password", [None, DEVELOPMENT_PASSWORD])
def test_seed_demo_refuses_with_debug_off_unless_given_a_password_of_its_own(service, demo_password):
    env = PRODUCTION | ({"DEMO_PASSWORD": demo_password} if demo_password else {})
    result = manage(service, "seed_demo", env=env)
    assert result.returncode != 0
    assert "set DEMO_PASSWORD to a password of your own" in result.stderr, result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_production_settings_have_debug_off_and_only_the_given_secret_key(service):
    result = manage(service, "diffsettings", "--all", env=PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^(### )?DEBUG = False$", result.stdout, flags=re.MULTILINE)
    assert f"SECRET_KEY = '{PRODUCTION['SECRET_KEY']}'" in result.stdout
    assert "insecure-development-only-key" not in result.stdout
    assert DEVELOPMENT_PASSWORD not in result.stdout
