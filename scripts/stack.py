"""Run the whole system locally: broker, three web processes, three workers.

``make run`` calls ``python scripts/stack.py``; the cross-service tests import
``Stack`` and start the same processes on free ports against PostgreSQL.

Apache Kafka (one combined broker and controller, KRaft, from its Maven Central
jars; data kept in ``var/kafka``) is started unless ``KAFKA_BOOTSTRAP_SERVERS``
is set, secured as in production: SASL/SCRAM and ACLs. ``prepare`` creates the
topics and, as the brokers' ``admin``, gives each service a login of its own with a
password new every run (``manage.py kafka_access``); each service's processes log in
as that service only. With ``KAFKA_BOOTSTRAP_SERVERS`` the admin login comes from
``KAFKA_SASL_USERNAME``/``KAFKA_SASL_PASSWORD`` (none: a PLAINTEXT cluster, no
logins). Each service uses SQLite under ``var/``
unless ``HOSPITAL_DATABASE_URL`` / ``BLOODBANK_DATABASE_URL`` /
``NOTIFICATION_DATABASE_URL`` is set. Ctrl-C stops every process started.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from shared_events.access import PRINCIPALS, password_variable
from shared_events.kafka_server import KafkaCluster, KafkaUnavailable, sasl_client_env

ROOT = Path(__file__).resolve().parent.parent

SERVICES = ("hospital", "bloodbank", "notification")
DEFAULT_PORTS = {"hospital": 8001, "bloodbank": 8002, "notification": 8003}


def web_command(service: str, port: int) -> list[str]:
    if service == "notification":  # ASGI for the Server-Sent Events feed
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--no-proxy-headers",  # X-Forwarded-For is Django's to judge (NUM_PROXIES), not uvicorn's
            "--timeout-graceful-shutdown",
            "5",  # open live-feed streams must not hold a stop
        ]
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--threads",
        "4",
        "--timeout",
        "60",
    ]


@dataclass
class Process:
    name: str
    service: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


@dataclass
class Stack:
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    database_urls: dict[str, str] = field(default_factory=dict)
    kafka_bootstrap: str | None = None
    broker_port: int = field(default_factory=lambda: int(os.environ.get("KAFKA_PORT", "9092")))
    broker_nodes: int = 1  # 3: a KRaft quorum of three (replication factor 3, min.insync.replicas 2)
    kafka_data: Path = ROOT / "var" / "kafka"  # kept between runs, as a production broker keeps its log
    env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None  # None: stream prefixed output to this terminal
    run_dir: Path = ROOT / "var" / "run"  # metrics files and heartbeats, wiped by prepare()
    broker: KafkaCluster | None = None
    processes: dict[str, Process] = field(default_factory=dict)
    kafka_admin_env: dict[str, str] = field(default_factory=dict)  # KAFKA_* of the admin login (secured)
    kafka_passwords: dict[str, str] = field(default_factory=dict)  # principal -> password, new every run

    # -- environment ---------------------------------------------------------
    def service_env(self, service: str) -> dict[str, str]:
        env = (
            os.environ
            | {
                "PYTHONUNBUFFERED": "1",
                "DEBUG": os.environ.get("DEBUG", "0"),
                "SECRET_KEY": os.environ.get("SECRET_KEY") or _dev_secret_key(),
                "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap or "",
                "ALLOWED_HOSTS": os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1"),
                # Test suites and benchmarks log in far more often than people (production: 30/minute).
                "LOGIN_THROTTLE_RATE": os.environ.get("LOGIN_THROTTLE_RATE", "10000/minute"),
                "LOG_FORMAT": os.environ.get("LOG_FORMAT", "plain"),  # readable here; JSON is the production default
                # web and worker of a service add up their figures here (prometheus_client multiprocess mode)
                "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir(service)),
                "WORKER_HEARTBEAT_FILE": str(self.run_dir / f"{service}-worker.heartbeat"),
            }
            | self.env
        )
        env |= self.kafka_login(service)
        url = self.database_urls.get(service) or os.environ.get(f"{service.upper()}_DATABASE_URL")
        if url:
            env["DATABASE_URL"] = url
        else:
            env.pop("DATABASE_URL", None)
        return env

    @property
    def kafka_secured(self) -> bool:
        return bool(self.kafka_admin_env.get("KAFKA_SASL_USERNAME"))

    def kafka_login(self, service: str) -> dict[str, str]:
        """``service``'s own Kafka login (never the admin's the launcher may have put in the environment)."""
        if service not in self.kafka_passwords:
            return {}  # a PLAINTEXT cluster, or before prepare() made the logins
        return self.kafka_admin_env | sasl_client_env(service, self.kafka_passwords[service])

    def metrics_dir(self, service: str) -> Path:
        return self.run_dir / "metrics" / service

    def manage(
        self, service: str, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT / f"{service}_service",
            env=self.service_env(service) | (env or {}),
            check=check,
            capture_output=True,
            text=True,
        )

    # -- lifecycle -------------------------------------------------------------
    def prepare(self) -> None:
        """Fresh metrics directories, broker, topics, migrations, static files, demo data."""
        shutil.rmtree(self.run_dir, ignore_errors=True)
        for service in SERVICES:
            self.metrics_dir(service).mkdir(parents=True)
        if not self.kafka_bootstrap:
            ports = [self.broker_port + 2 * i for i in range(self.broker_nodes)] if self.broker_port else None
            self.broker = KafkaCluster(data_dir=self.kafka_data, size=self.broker_nodes, ports=ports)
            self._report(f"starting Apache Kafka (data in {self.kafka_data})...")
            self.broker.start()
            self.kafka_bootstrap = self.broker.bootstrap_servers
        self._report(f"broker      {self.kafka_bootstrap}")
        self._prepare_kafka()
        with ThreadPoolExecutor(len(SERVICES)) as pool:
            list(pool.map(self._prepare_service, SERVICES))  # re-raises the first failure

    def _prepare_kafka(self) -> None:
        """Topics, then (secured) every principal's password and the registry's ACLs, as the admin."""
        self.kafka_admin_env = self.broker.client_env() if self.broker else _admin_env_given()
        admin = self.kafka_admin_env | {"KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap or ""}
        self._run_step("hospital", "create_topics", env=admin)
        if self.kafka_secured:
            self.kafka_passwords = {
                p: os.environ.get(password_variable(p)) or secrets.token_urlsafe(32) for p in PRINCIPALS
            }
            passwords = {password_variable(p): password for p, password in self.kafka_passwords.items()}
            self._run_step("hospital", "kafka_access", env=admin | passwords)

    def _prepare_service(self, service: str) -> None:
        steps = (
            ("migrate", "--noinput"),
            ("createcachetable",),  # the login throttle's counters, shared by every worker
            ("collectstatic", "--noinput"),
            ("seed_demo", "--development"),
        )
        for step in steps:
            self._run_step(service, *step)

    def _run_step(self, service: str, *args: str, env: dict[str, str] | None = None) -> None:
        result = self.manage(service, *args, check=False, env=env)
        if result.returncode != 0:
            raise RuntimeError(f"{service}: manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> None:
        for service in SERVICES:
            self.add(Process(f"{service}-web", service, web_command(service, self.ports[service])))
            self.add_worker(service)
        for name in self.processes:
            self.start_process(name)

    def add(self, process: Process) -> None:
        self.processes[process.name] = process

    def add_worker(self, service: str, name: str | None = None) -> Process:
        """A worker process; its name is its static group membership (``KAFKA_GROUP_INSTANCE_ID``)."""
        name = name or f"{service}-worker"
        process = Process(name, service, [sys.executable, "manage.py", "run_worker"], {"KAFKA_GROUP_INSTANCE_ID": name})
        self.add(process)
        return process

    def start_process(self, name: str) -> None:
        process = self.processes[name]
        log_file = self.log_dir / f"{name}.log" if self.log_dir is not None else None
        out = log_file.open("ab") if log_file else subprocess.PIPE  # the child owns the file
        process.popen = subprocess.Popen(
            process.command,
            cwd=ROOT / f"{process.service}_service",
            # libpq's PGAPPNAME: pg_stat_activity shows which process holds a connection.
            env=self.service_env(process.service) | {"PGAPPNAME": name} | process.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if out is subprocess.PIPE:
            threading.Thread(target=_prefix_output, args=(name, process.popen), daemon=True).start()

    def stop_process(self, name: str, *, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        process = self.processes[name]
        if process.popen is None or process.popen.poll() is not None:
            return None if process.popen is None else process.popen.returncode
        os.killpg(process.popen.pid, sig)
        try:
            return process.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.popen.pid, signal.SIGKILL)
            return process.popen.wait()

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            if self.processes[name].running:
                os.killpg(self.processes[name].popen.pid, signal.SIGTERM)
        for name in self.processes:
            self.stop_process(name)
        if self.broker is not None:
            self.broker.stop()

    def url(self, service: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        for service in SERVICES:
            while not _ready(self.url(service, "/readyz")):
                dead = [p.name for p in self.processes.values() if p.popen and p.popen.poll() is not None]
                if dead:
                    raise RuntimeError(f"process(es) exited: {', '.join(dead)}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{service} not ready after {timeout}s")
                time.sleep(0.1)

    def _report(self, line: str) -> None:
        if self.log_dir is None:
            print(line, flush=True)

    def __iter__(self) -> Iterator[Process]:
        return iter(self.processes.values())


def _admin_env_given() -> dict[str, str]:
    """The admin login for a cluster named by ``KAFKA_BOOTSTRAP_SERVERS`` (empty: a PLAINTEXT cluster)."""
    names = ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD")
    return {name: os.environ[name] for name in names if os.environ.get(name)}


def _kafka_login_hint(stack: Stack) -> str:
    if not stack.kafka_secured:
        return "(PLAINTEXT)"
    where = f"password in {stack.broker.data_dir / 'admin.secret'}" if stack.broker else "password as given"
    return f"(SASL/SCRAM-SHA-512; each service logs in as itself; admin: {where})"


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own local URL
            return response.status == 200
    except OSError:
        return False


def _prefix_output(name: str, popen: subprocess.Popen[bytes]) -> None:
    assert popen.stdout is not None
    for line in popen.stdout:
        sys.stdout.write(f"{name:<22}| {line.decode(errors='replace')}")
        sys.stdout.flush()


def _dev_secret_key() -> str:
    """A development key kept under var/ (never used when SECRET_KEY is set)."""
    path = ROOT / "var" / "dev-secret-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


BANNER = """
Blood request system is running.

  Hospital    {h}/dashboard/   API {h}/api/docs/
  Blood bank  {b}/admin/       API {b}/api/docs/
  Notices     {n}/api/v1/notifications/   API {n}/api/docs/
  Kafka       {k}   {kafka_login}

  Logins (password: {pw}):
    stmary_staff       St Mary's Hospital staff   (hospital + notifications)
    citygeneral_staff  City General Hospital staff (hospital + notifications)
    bank_admin         blood bank admin            (bank admin/API + notifications)

Press Ctrl-C to stop everything.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logs", type=Path, default=None, help="write process logs to this folder")
    args = parser.parse_args()
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    stack = Stack(kafka_bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None, log_dir=args.logs)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stack.prepare()
        stack.start()
        stack.wait_ready()
        print(
            BANNER.format(
                h=stack.url("hospital"),
                b=stack.url("bloodbank"),
                n=stack.url("notification"),
                k=stack.kafka_bootstrap,
                kafka_login=_kafka_login_hint(stack),
                pw=os.environ.get("DEMO_PASSWORD") or "demo-password",
            ),
            flush=True,
        )
        while not stop.is_set():
            dead = [p.name for p in stack if p.popen and p.popen.poll() is not None]
            if dead:
                print(f"stopping: {', '.join(dead)} exited", file=sys.stderr)
                return 1
            stop.wait(1)
    except KafkaUnavailable as exc:
        print(f"\nmake run cannot start Apache Kafka: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping every process...", file=sys.stderr, flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
