"""The broker launcher: its children die with the launching process (never with the thread that started
them), and the ports it chooses stay its own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import pytest

from shared_events.kafka_server import (
    KafkaCluster,
    KafkaUnavailable,
    ephemeral_port_range,
    free_port,
    spawn_with_parent,
)
from shared_events.testing import wait_for

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def test_a_child_started_from_a_short_lived_thread_outlives_that_thread():
    started: list[subprocess.Popen] = []
    thread = threading.Thread(target=lambda: started.append(spawn_with_parent(SLEEPER)))
    thread.start()
    thread.join()
    (child,) = started
    try:
        # With PR_SET_PDEATHSIG tied to the exited thread the child would be gone within milliseconds.
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=2)
    finally:
        child.kill()
        child.wait()


def test_a_child_dies_when_the_launching_process_is_killed():
    # A launcher process that starts a sleeper, prints its pid and is then killed with SIGKILL.
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from shared_events.kafka_server import spawn_with_parent; "
            f"child = spawn_with_parent({SLEEPER!r}); print(child.pid, flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    pid = int(launcher.stdout.readline())
    launcher.kill()
    launcher.wait()
    wait_for(lambda: not _alive(pid), timeout=10, message=f"child {pid} gone after its launcher was killed")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_free_ports_lie_below_the_range_outgoing_connections_draw_from_and_are_never_handed_out_twice():
    low, _ = ephemeral_port_range()
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(port < low for port in ports)


def test_a_cluster_whose_node_finds_its_port_taken_starts_again_on_fresh_ports(tmp_path):
    cluster = KafkaCluster(data_dir=tmp_path / "kafka")
    taken = cluster.nodes[1].port
    with socket.socket() as squatter:  # another process listens there before the broker binds
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        try:
            cluster.start()
            assert cluster.nodes[1].port != taken
            assert cluster.nodes[1].running
            first_log = (tmp_path / "kafka" / "node-1" / "broker.log").read_text()
            assert "Address already in use" in first_log, "the first start did fail on the taken port"
        finally:
            cluster.stop()


def test_a_cluster_on_given_ports_reports_a_taken_port_instead_of_moving(tmp_path):
    port = free_port()
    cluster = KafkaCluster(data_dir=tmp_path / "kafka", ports=[port])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        try:
            with pytest.raises(KafkaUnavailable, match="exited"):
                cluster.start(timeout=60)
        finally:
            cluster.stop()
    assert cluster.nodes[1].port == port
