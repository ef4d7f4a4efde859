"""Apache Kafka for development and tests: fetch its jars, format, start, wait, stop.

One node is a combined broker and controller (KRaft, no ZooKeeper), as ``make run``
uses; three nodes form one KRaft quorum of combined nodes (the fault tests). Nodes are
secured as in the compose deployment (``kafka/compose/server.properties``): clients
authenticate with SASL/SCRAM-SHA-512, the StandardAuthorizer denies what no ACL allows,
and ``admin`` (its password in ``<data>/admin.secret``, made at the first format) is the
only super user; ``secured=False`` (``--no-auth``) gives the old PLAINTEXT node. The jars
come from Maven Central through Maven (``kafka/pom.xml``, the one place the version is
pinned) and are copied once into ``kafka/jars/<version>/``. Data lives in a folder, so a
node restarted on the same folder keeps its log, as in production.

Usage (``kafka/broker.py`` is the same command)::

    python -m shared_events.kafka_server                       # one node on 9092 until Ctrl-C
    python -m shared_events.kafka_server --port 0 -- make x    # run a command beside a fresh node
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KAFKA_DIR = Path(os.environ.get("KAFKA_LAUNCHER_DIR", Path(__file__).resolve().parents[2] / "kafka"))
JVM_OPTIONS = [
    # Kafka's own defaults (bin/kafka-run-class.sh), with a heap sized for a development machine.
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
]
NO_TOOLS_HINT = (
    "Apache Kafka runs from its Maven Central jars here, which needs Java 17+ and Maven (mvn) on the PATH. "
    "Install them (Debian: apt-get install openjdk-17-jre-headless maven), or run the whole system "
    "with Docker instead: docker compose up (make up)."
)


# -- security (the same settings as kafka/compose/server.properties) ------------------
ADMIN_PRINCIPAL = "admin"
SCRAM_MECHANISM = "SCRAM-SHA-512"
CLIENT_LISTENER = "SASL_PLAINTEXT"
# The broker reads the admin's password from this environment variable (EnvVarConfigProvider),
# so that it is written in no file of the deployment.
BROKER_ADMIN_VARIABLE = "KAFKA_ADMIN_PASSWORD"
_FROM_ENV = f"${{env:{BROKER_ADMIN_VARIABLE}}}"


def security_properties() -> dict[str, str]:
    """SASL/SCRAM for clients and between brokers, SASL/PLAIN on the controller listener, ACLs enforced.

    SCRAM credentials live in the metadata log, which the controllers serve: the controller
    listener cannot use them, so it authenticates the one static ``admin`` login with PLAIN
    (in the JAAS line, its password from the environment). Nothing reaches the cluster
    unauthenticated, not even on the controller port; production adds TLS (SASL_SSL).
    """
    scram = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN_PRINCIPAL}" password="{_FROM_ENV}";'
    )
    plain = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{ADMIN_PRINCIPAL}" password="{_FROM_ENV}" user_{ADMIN_PRINCIPAL}="{_FROM_ENV}";'
    )
    return {
        "listener.security.protocol.map": f"{CLIENT_LISTENER}:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "inter.broker.listener.name": CLIENT_LISTENER,
        "controller.listener.names": "CONTROLLER",
        "sasl.enabled.mechanisms": SCRAM_MECHANISM,
        "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        f"listener.name.{CLIENT_LISTENER.lower()}.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": scram,
        "listener.name.controller.plain.sasl.jaas.config": plain,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{ADMIN_PRINCIPAL}",
        "config.providers": "env",
        "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
    }


def sasl_client_config(username: str, password: str) -> dict[str, str]:
    """librdkafka settings of a client that logs in as ``username``."""
    return {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": SCRAM_MECHANISM,
        "sasl.username": username,
        "sasl.password": password,
    }


def sasl_client_env(username: str, password: str) -> dict[str, str]:
    """The same as ``KAFKA_*`` variables (``shared_events.kafka_config`` reads them)."""
    return {
        f"KAFKA_{name.upper().replace('.', '_')}": value
        for name, value in sasl_client_config(username, password).items()
    }


class KafkaUnavailable(RuntimeError):
    """Java or Maven is missing, the jars could not be fetched, or a node did not start."""


_LOWEST_LISTEN_PORT = 10000
_handed_out: set[int] = set()


def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections (Linux's default where unreadable)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A loopback port nobody listens on, below the kernel's ephemeral range.

    ``bind(0)`` would hand out a port from the ephemeral range, which every outgoing
    connection (a Kafka client, a database session) also draws from: between this
    check and the listener's own bind, or while a stopped broker waits to restart,
    a client could take it ("Address already in use"). Below that range only
    listeners choose ports, and this process never hands out the same port twice.
    """
    low, _ = ephemeral_port_range()
    rng = random.SystemRandom()
    for _ in range(1000):
        port = rng.randrange(_LOWEST_LISTEN_PORT, max(low, _LOWEST_LISTEN_PORT + 1000))
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise KafkaUnavailable(f"no free loopback port between {_LOWEST_LISTEN_PORT} and {low}")


# -- the jars ---------------------------------------------------------------------
def kafka_version() -> str:
    """The pinned version: ``<kafka.version>`` in ``kafka/pom.xml``."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", (KAFKA_DIR / "pom.xml").read_text())
    if match is None:
        raise KafkaUnavailable(f"no <kafka.version> in {KAFKA_DIR / 'pom.xml'}")
    return match.group(1).strip()


def java_major(java: str) -> int:
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)', out)
    return int(match.group(1)) if match else 0


def check_tools(*, need_maven: bool) -> str:
    """The ``java`` to run; raises ``KafkaUnavailable`` with what to do when Java 17+ (or Maven) is missing."""
    java = shutil.which("java")
    if java is None or java_major(java) < 17:
        found = "no java on the PATH" if java is None else f"{java} is older than 17"
        raise KafkaUnavailable(f"{found}. {NO_TOOLS_HINT}")
    if need_maven and shutil.which("mvn") is None:
        raise KafkaUnavailable(f"no mvn on the PATH. {NO_TOOLS_HINT}")
    return java


def jars_dir() -> Path:
    return KAFKA_DIR / "jars" / kafka_version()


def ensure_jars() -> Path:
    """Copy the broker's jars from Maven Central once (a lock keeps parallel callers to one download)."""
    target = jars_dir()
    done = target / ".complete"
    if done.exists():
        return target
    check_tools(need_maven=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return target
        staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=target.parent))
        print(f"fetching Apache Kafka {kafka_version()} from Maven Central (once)...", file=sys.stderr, flush=True)
        result = subprocess.run(
            ["mvn", "-q", "-B", "-f", str(KAFKA_DIR / "pom.xml"), "dependency:copy-dependencies",
             f"-DoutputDirectory={staging}"],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise KafkaUnavailable(f"mvn could not fetch Kafka's jars:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        done.touch()
    return target


# -- nodes ------------------------------------------------------------------------
@dataclass
class Node:
    node_id: int
    port: int
    controller_port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None
    log_start: int = 0  # where broker.log stood when this process was started

    @property
    def lost_its_port(self) -> bool:
        """Whether this process stopped because another one listens on its port."""
        log = self.data_dir / "broker.log"
        if self.running or not log.exists():
            return False
        with log.open("rb") as file:
            file.seek(self.log_start)
            return b"Address already in use" in file.read()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"


@dataclass
class KafkaCluster:
    """``size`` combined broker+controller nodes on loopback, one KRaft quorum, data under ``data_dir``.

    Replication follows the size: a single node has replication factor 1; three or
    more have 3 with ``min.insync.replicas=2``, as in production. ``broker_config``
    adds or overrides ``server.properties`` lines for every node.
    """

    data_dir: Path
    size: int = 1
    ports: list[int] | None = None
    heap: str = "512m"
    broker_config: dict[str, str] = field(default_factory=dict)
    secured: bool = True
    nodes: dict[int, Node] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.ports is not None and len(self.ports) != self.size:
            raise ValueError(f"{self.size} node(s) need {self.size} port(s), got {self.ports}")
        self._choose_ports()

    def _choose_ports(self) -> None:
        """The given ports (controller on the next one), or free ones."""
        for node_id in range(1, self.size + 1):
            port, controller_port = (
                (self.ports[node_id - 1], self.ports[node_id - 1] + 1) if self.ports else (free_port(), free_port())
            )
            self.nodes[node_id] = Node(node_id, port, controller_port, self.data_dir / f"node-{node_id}")

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.address for node in self.nodes.values())

    @property
    def admin_password(self) -> str:
        """The ``admin`` principal's password: made at the first start, kept with the data (mode 0600)."""
        path = self.data_dir / "admin.secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(32))
        return path.read_text().strip()

    def client_config(self, bootstrap: str | None = None) -> dict[str, str]:
        """librdkafka settings of an admin client (the launcher's own checks, tests that manage the cluster)."""
        config = {"bootstrap.servers": bootstrap or self.bootstrap_servers}
        if self.secured:
            config |= sasl_client_config(ADMIN_PRINCIPAL, self.admin_password)
        return config

    def client_env(self) -> dict[str, str]:
        """``KAFKA_*`` variables for a command beside the cluster: its addresses and, secured, the admin login."""
        env = {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers}
        if self.secured:
            env |= sasl_client_env(ADMIN_PRINCIPAL, self.admin_password)
        return env

    @property
    def replication_factor(self) -> int:
        return 3 if self.size >= 3 else 1

    @property
    def min_insync_replicas(self) -> int:
        return 2 if self.size >= 3 else 1

    def server_properties(self, node: Node) -> dict[str, str]:
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes.values())
        rf, min_isr = str(self.replication_factor), str(self.min_insync_replicas)
        listener = CLIENT_LISTENER if self.secured else "PLAINTEXT"
        return (
            {
                "process.roles": "broker,controller",
                "node.id": str(node.node_id),
                "controller.quorum.voters": voters,
                "listeners": f"{listener}://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
                "advertised.listeners": f"{listener}://127.0.0.1:{node.port}",
                "controller.listener.names": "CONTROLLER",
                "inter.broker.listener.name": "PLAINTEXT",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            }
            | (security_properties() if self.secured else {})
            | {
                "log.dirs": str(node.log_dir),
                # As in production: topics are created explicitly (manage.py create_topics), never by a client.
                "auto.create.topics.enable": "false",
                "default.replication.factor": rf,
                "min.insync.replicas": min_isr,
                "offsets.topic.replication.factor": rf,
                "transaction.state.log.replication.factor": rf,
                "transaction.state.log.min.isr": min_isr,
                "share.coordinator.state.topic.replication.factor": rf,
                "share.coordinator.state.topic.min.isr": min_isr,
                # Development and tests: small internal topics (made when the first group or idempotent
                # producer comes) and no wait for more members before a group's first assignment
                # (production keeps 50 partitions each and 3 s).
                "offsets.topic.num.partitions": "10",
                "transaction.state.log.num.partitions": "4",
                "group.initial.rebalance.delay.ms": "0",
                "num.partitions": "1",
            }
            | self.broker_config
        )

    # -- lifecycle ----------------------------------------------------------------
    def start(self, *, timeout: float = 90.0, attempts: int = 3) -> None:
        """Format what is new, start every node, and wait until all of them answer metadata requests.

        With ports of its own choosing, a cluster whose node found its port taken
        (another process bound it first) starts again on fresh ports.
        """
        jars = ensure_jars()
        java = check_tools(need_maven=False)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cluster_id = self._cluster_id(java, jars)
        for node in self.nodes.values():
            self._format(java, jars, node, cluster_id)
        for attempt in range(1, attempts + 1):
            for node in self.nodes.values():
                self._spawn(java, jars, node)
            try:
                self.wait_ready(timeout=timeout)
                return
            except KafkaUnavailable:
                lost = any(node.lost_its_port for node in self.nodes.values())
                if self.ports or not lost or attempt == attempts:
                    raise
                self.stop()
                self._choose_ports()

    def _cluster_id(self, java: str, jars: Path) -> str:
        path = self.data_dir / "cluster-id"
        if not path.exists():
            path.write_text(_run_java(java, jars, "kafka.tools.StorageTool", "random-uuid").strip().splitlines()[-1])
        return path.read_text().strip()

    def _write_properties(self, node: Node) -> Path:
        node.data_dir.mkdir(parents=True, exist_ok=True)
        path = node.data_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in self.server_properties(node).items()))
        return path

    def _format(self, java: str, jars: Path, node: Node, cluster_id: str) -> None:
        properties = self._write_properties(node)
        if (node.log_dir / "meta.properties").exists():
            if self.secured and not (self.data_dir / "admin.secret").exists():
                raise KafkaUnavailable(f"{self.data_dir} was formatted without SASL (no admin login): delete it")
            return  # formatted before: a restart keeps its log
        scram = (
            []
            if not self.secured
            else ["--add-scram", f"{SCRAM_MECHANISM}=[name={ADMIN_PRINCIPAL},password={self.admin_password}]"]
        )
        _run_java(java, jars, "kafka.tools.StorageTool", "format", "--ignore-formatted",
                  "-t", cluster_id, "-c", str(properties), *scram, env=self._java_env())  # fmt: skip

    def _java_env(self) -> dict[str, str]:
        """The nodes' environment: the admin password for ``${env:KAFKA_ADMIN_PASSWORD}`` in their properties."""
        return os.environ | ({BROKER_ADMIN_VARIABLE: self.admin_password} if self.secured else {})

    def _spawn(self, java: str, jars: Path, node: Node) -> None:
        properties = self._write_properties(node)
        log = (node.data_dir / "broker.log").open("ab")
        node.log_start = log.tell()
        node.process = spawn_with_parent(
            [java, f"-Xms{self.heap}", f"-Xmx{self.heap}", *JVM_OPTIONS,
             f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.properties'}",
             "-cp", f"{jars}/*", "kafka.Kafka", str(properties)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self._java_env(),
            start_new_session=True,
        )  # fmt: skip
        log.close()  # the child has its own copy

    def wait_ready(self, *, timeout: float = 90.0, nodes: list[int] | None = None) -> None:
        """Until the given nodes (all by default) answer metadata requests and see each other as brokers."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        wanted = set(nodes or self.nodes)
        deadline = time.monotonic() + timeout
        while True:
            dead = [n.node_id for n in self.nodes.values() if n.node_id in wanted and not n.running]
            if dead:
                raise KafkaUnavailable(f"Kafka node(s) {dead} exited; see {self.data_dir}/node-*/broker.log")
            try:
                live = {
                    n for n in wanted if _brokers_seen(AdminClient, self.client_config(self.nodes[n].address)) >= wanted
                }
            except KafkaException:
                live = set()
            if live == wanted:
                return
            if time.monotonic() > deadline:
                raise KafkaUnavailable(f"Kafka not ready after {timeout}s; see {self.data_dir}/node-*/broker.log")
            time.sleep(0.2)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every node (a controlled shutdown), SIGKILL what is left after ``timeout``."""
        for node in self.nodes.values():
            if node.running:
                os.killpg(node.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for node in self.nodes.values():
            self._reap(node, deadline)

    def stop_node(self, node_id: int, *, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        node = self.nodes[node_id]
        if node.running:
            os.killpg(node.process.pid, sig)
        self._reap(node, time.monotonic() + timeout)

    def kill_node(self, node_id: int) -> None:
        self.stop_node(node_id, sig=signal.SIGKILL)

    def start_node(self, node_id: int, *, wait: bool = True, timeout: float = 90.0) -> None:
        node = self.nodes[node_id]
        if node.running:
            return
        self._spawn(check_tools(need_maven=False), jars_dir(), node)
        if wait:
            self.wait_ready(timeout=timeout, nodes=[node_id])

    def _reap(self, node: Node, deadline: float) -> None:
        if node.process is None:
            return
        try:
            node.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(node.process.pid, signal.SIGKILL)
            node.process.wait()

    # -- what a fault test needs to know -------------------------------------------
    def active_controller(self) -> int:
        """The KRaft quorum leader, from the newest quorum-state file among the nodes (-1 while unknown)."""
        best = (-1, -1)  # (epoch, leader)
        for node in self.nodes.values():
            path = node.log_dir / "__cluster_metadata-0" / "quorum-state"
            with contextlib.suppress(OSError, ValueError):
                state = json.loads(path.read_text())
                best = max(best, (int(state.get("leaderEpoch", -1)), int(state.get("leaderId", -1))))
        return best[1]

    def leader_of(self, topic: str, partition: int = 0) -> int:
        """The broker leading ``topic``'s ``partition``, as the live nodes' metadata says."""
        from confluent_kafka.admin import AdminClient

        live = ",".join(n.address for n in self.nodes.values() if n.running)
        metadata = AdminClient(self.client_config(live) | {"log_level": 2}).list_topics(topic, timeout=10)
        return metadata.topics[topic].partitions[partition].leader


# PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process. Every broker is
# forked from this one thread, which lives as long as the launching process: a node (re)started from a
# short-lived thread (a pool in the fault tests) must not get SIGTERM the moment that thread ends.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-spawner")


def spawn_with_parent(command: list[str], **popen: Any) -> subprocess.Popen:
    """``subprocess.Popen`` of a child that gets SIGTERM when this process dies (even by SIGKILL), forked from a
    thread that lives as long as this process, whichever thread calls."""
    return _SPAWNER.submit(subprocess.Popen, command, preexec_fn=_die_with_parent, **popen).result()


def _die_with_parent() -> None:
    """In the child: SIGTERM when the launching process dies, even by SIGKILL (no broker left behind)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _brokers_seen(admin_client: type, config: dict[str, str]) -> set[int]:
    """The broker ids the node at ``config``'s address reports (raises ``KafkaException`` if it does not answer)."""
    host, port = config["bootstrap.servers"].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=0.5).close()
    except OSError:
        return set()  # not listening yet: no client (and none of its connection-refused lines)
    client = admin_client(config | {"log_level": 2})
    return set(client.list_topics(timeout=2).brokers)


def _run_java(java: str, jars: Path, main_class: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [java, f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.properties'}", "-cp", f"{jars}/*", main_class, *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if result.returncode != 0:
        shown = " ".join(re.sub(r"password=[^,\]]*", "password=***", arg) for arg in args)
        raise KafkaUnavailable(f"{main_class} {shown} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


@contextlib.contextmanager
def running_cluster(
    data_dir: Path, *, size: int = 1, ports: list[int] | None = None, secured: bool = True
) -> Iterator[KafkaCluster]:
    cluster = KafkaCluster(data_dir=data_dir, size=size, ports=ports, secured=secured)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=9092, help="first node's port; 0 picks free ports")
    parser.add_argument("--nodes", type=int, default=1, help="1 (combined broker+controller) or 3 (a quorum)")
    parser.add_argument("--data", type=Path, default=None, help="data folder (kept); default: a fresh temporary one")
    parser.add_argument("--fetch-only", action="store_true", help="fetch the jars and exit")
    parser.add_argument("--no-auth", action="store_true", help="PLAINTEXT without ACLs (default: SASL/SCRAM + ACLs)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- command to run beside the broker")
    args = parser.parse_args(argv)
    try:
        if args.fetch_only:
            print(ensure_jars())
            return 0
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        ports = [args.port + 2 * i for i in range(args.nodes)] if args.port else None
        data = args.data or Path(tempfile.mkdtemp(prefix="kafka-"))
        with running_cluster(data, size=args.nodes, ports=ports, secured=not args.no_auth) as cluster:
            print(f"Apache Kafka {kafka_version()} on {cluster.bootstrap_servers} (data in {data})", file=sys.stderr)
            if cluster.secured:
                print(f"SASL/SCRAM: admin's password in {data / 'admin.secret'}", file=sys.stderr)
            if not command:
                signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
                with contextlib.suppress(KeyboardInterrupt):
                    while all(node.running for node in cluster.nodes.values()):
                        time.sleep(1)
                return 0
            return subprocess.call(command, env=os.environ | cluster.client_env())
    except KafkaUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    finally:
        if args.data is None and not args.fetch_only and "data" in locals():
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "ADMIN_PRINCIPAL",
    "KafkaCluster",
    "KafkaUnavailable",
    "ensure_jars",
    "ephemeral_port_range",
    "free_port",
    "kafka_version",
    "running_cluster",
    "sasl_client_config",
    "sasl_client_env",
    "security_properties",
]
