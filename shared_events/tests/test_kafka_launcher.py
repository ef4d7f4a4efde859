"""The broker launcher's children: they die with the launching process, never with the thread that started them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from shared_events.kafka_server import spawn_with_parent
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
