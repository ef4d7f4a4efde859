"""What ``make bench`` counts as a process's CPU (bench/measure.py), against real processes and the real broker."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest
from measure import Sample, Sampler, _compiler_seconds, _machine_busy
from mix import MEAN_UNITS
from warmup import WARMUP_MAX_SECONDS, WARMUP_MORE_SECONDS, WARMUP_RATE, units_to_stock

# Burns half a second of CPU, says so, then sleeps until killed.
BURN = (
    "import time\n"
    "start = time.process_time()\n"
    "while time.process_time() - start < 0.5:\n"
    "    pass\n"
    "print('burnt', flush=True)\n"
    "time.sleep(120)\n"
)


@pytest.fixture
def idle_parent() -> Iterator[subprocess.Popen[str]]:
    """A shell that starts the burner as its child once told to (a gunicorn master replacing a worker)."""
    parent = subprocess.Popen(
        ["bash", "-c", f'read _; "{sys.executable}" -c "$0"; exit 0', BURN],  # a child, not an exec
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    yield parent
    for process in psutil.Process(parent.pid).children(recursive=True):
        process.kill()
    parent.kill()
    parent.wait()


def _sampler(roots: dict[str, list[int]]) -> Sampler:
    return Sampler(
        roots=roots, databases={}, monitor_dsn="postgres://postgres@127.0.0.1:5432/postgres", hospital_dsn=None
    )


def test_a_process_born_between_two_samples_has_all_of_its_cpu_counted(idle_parent):
    sampler = _sampler({"web": [idle_parent.pid]})
    sampler.interval = 3600  # only the samples taken here
    sampler.start()  # the first sample: the parent alone
    try:
        idle_parent.stdin.write("go\n")
        idle_parent.stdin.flush()
        assert idle_parent.stdout.readline() == "burnt\n"  # the child was born and used 0.5 s after that sample
        sampler.sample()
    finally:
        sampler.stop()
    assert sampler.samples[-1].cpu["web"] >= 0.45


def test_the_broker_jit_compilers_cpu_is_read_from_its_threads(kafka_bootstrap):
    port = int(kafka_bootstrap.split(",")[0].rsplit(":", 1)[1])
    (broker,) = {c.pid for c in psutil.net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == port}
    assert _compiler_seconds([broker]) > 0  # a JVM compiles from its first second
    assert _compiler_seconds([psutil.Process().pid]) == 0  # a Python process has no compiler threads


def test_the_bench_stocks_enough_units_for_the_longest_warm_up_and_every_step():
    longest_warmup_requests = WARMUP_RATE * (WARMUP_MAX_SECONDS + WARMUP_MORE_SECONDS)
    step_requests = (40 + 50) * 40.0

    units = units_to_stock([40.0, 50.0], step_seconds=40.0, warmup_seconds=60.0)

    assert units >= (longest_warmup_requests + step_requests) * MEAN_UNITS


def test_time_the_hypervisor_stole_is_reported_apart_and_not_as_other_processes():
    sampler = _sampler({})
    for at in (1.0, 2.0):  # two seconds: our group used 0.5 core, the machine 0.75, and 0.25 was stolen
        sampler.samples.append(
            Sample(at=at, span=1.0, cpu={"web": 0.5}, rss={}, machine_busy=0.75, pending=None, stolen=0.25)
        )
    window = sampler.window(0.0, 2.0)
    assert window["cpu_cores_stolen"] == 0.25
    assert window["cpu_cores_other_processes"] == 0.25
    busy, stolen = _machine_busy()
    assert busy > 0 and stolen >= 0  # /proc/stat's steal column (0 where there is no hypervisor)
    assert busy + stolen <= sum(psutil.cpu_times()) - psutil.cpu_times().idle  # steal is not counted as busy
