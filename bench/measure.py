"""What the bench measures besides the client: process CPU and memory, the backlog, database timestamps."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg2

CLIENT = "bench client"  # the Sampler's group of the bench's own process: not part of what is measured


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (nearest rank) of ``values``; None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: Iterable[float]) -> dict[str, float | int | None]:
    values = [s * 1000 for s in seconds]
    out: dict[str, float | int | None] = {"n": len(values)}
    for q in (50, 95, 99):
        value = percentile(values, q)
        out[f"p{q}"] = None if value is None else round(value, 2)
    out["max"] = round(max(values), 2) if values else None
    return out


@dataclass
class Sample:
    at: float  # monotonic
    span: float  # seconds since the previous sample
    cpu: dict[str, float]  # CPU seconds used since the previous sample, per group
    rss: dict[str, int]  # resident memory now, per group (bytes)
    machine_busy: float  # CPU seconds used by every process on the machine since the previous sample
    pending: int | None  # requests PENDING at the hospital (the backlog)
    jit: float = 0.0  # CPU seconds of the broker's JIT compiler threads since the previous sample (in cpu too)
    stolen: float = (
        0.0  # CPU seconds the hypervisor gave to other machines while ours wanted them (not in machine_busy)
    )


@dataclass
class Sampler:
    """Samples every ``interval`` seconds, in a thread, until stopped.

    ``roots`` names process groups by their root pids (a group is the roots and
    all their descendants: gunicorn's workers, the broker). PostgreSQL backends
    are grouped by the database they serve (``databases``: name -> group), and
    the server's own background processes as ``postgres (background)``; backends
    of other databases on the server are not ours and not counted.
    """

    roots: dict[str, list[int]]
    databases: dict[str, str]
    monitor_dsn: str
    hospital_dsn: str | None  # the backlog is counted there (None: not counted)
    interval: float = 1.0
    alone: str = CLIENT  # this group is its root only (the stack's processes are its children)
    jvm: str = "broker"  # the group whose JIT compiler threads are also counted apart (Sample.jit)
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _last: dict[int, float] = field(default_factory=dict)
    _procs: dict[int, psutil.Process] = field(default_factory=dict)
    _jit_last: float = 0.0

    def start(self) -> None:
        self._monitor = psycopg2.connect(self.monitor_dsn)
        self._monitor.autocommit = True
        self._hospital = psycopg2.connect(self.hospital_dsn) if self.hospital_dsn else None
        if self._hospital is not None:
            self._hospital.autocommit = True
        self._machine_last, self._stolen_last = _machine_busy()
        self._last_at = time.monotonic()
        self.sample()  # baseline CPU times
        self.samples.clear()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._monitor.close()
        if self._hospital is not None:
            self._hospital.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def _members(self) -> dict[int, str]:
        members: dict[int, str] = {}
        for group, pids in self.roots.items():
            for pid in pids:
                try:
                    root = psutil.Process(pid)
                    family = [root] if group == self.alone else [root, *root.children(recursive=True)]
                    for proc in family:
                        members[proc.pid] = group
                except psutil.NoSuchProcess:
                    continue
        with self._monitor.cursor() as cursor:
            cursor.execute("SELECT pid, datname, backend_type FROM pg_stat_activity WHERE pid <> pg_backend_pid()")
            for pid, datname, backend_type in cursor.fetchall():
                if datname in self.databases:
                    members[pid] = self.databases[datname]
                elif datname is None and backend_type != "client backend":
                    members[pid] = "postgres (background)"
        return members

    def sample(self) -> None:
        """Take a sample now (the thread takes one every ``interval``)."""
        now = time.monotonic()
        cpu: dict[str, float] = {}
        rss: dict[str, int] = {}
        members = self._members()
        for pid, group in members.items():
            proc = self._procs.get(pid)
            try:
                if proc is None:
                    proc = self._procs[pid] = psutil.Process(pid)
                with proc.oneshot():
                    times = proc.cpu_times()
                    used = times.user + times.system
                    memory = proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                self._procs.pop(pid, None)
                continue
            before = self._last.get(pid)
            self._last[pid] = used
            if before is None and self._last:
                # Not there at the previous sample, as the family is looked up at each: born since
                # (a replaced gunicorn worker, a new database connection), all of its CPU counts.
                before = 0.0
            if before is not None:  # at the first sample, the processes already running count from the next
                cpu[group] = cpu.get(group, 0.0) + max(0.0, used - before)
            rss[group] = rss.get(group, 0) + memory
        jit = _compiler_seconds(pid for pid, group in members.items() if group == self.jvm)
        jit_since, self._jit_last = max(0.0, jit - self._jit_last), jit
        busy, stolen = _machine_busy()
        machine, self._machine_last = busy - self._machine_last, busy
        stolen, self._stolen_last = stolen - self._stolen_last, stolen
        pending = None
        if self._hospital is not None:
            with self._hospital.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM blood_requests_bloodrequest WHERE status = 'PENDING'")
                (pending,) = cursor.fetchone()
        span, self._last_at = now - self._last_at, now
        self.samples.append(
            Sample(
                at=now,
                span=span,
                cpu=cpu,
                rss=rss,
                machine_busy=machine,
                pending=pending,
                jit=jit_since,
                stolen=stolen,
            )
        )

    def jit_cores(self, seconds: float) -> float:
        """Cores the broker's JIT compilers used over the last ``seconds`` (0 when not sampled yet)."""
        if not self.samples:
            return 0.0
        since = self.samples[-1].at - seconds
        inside = [s for s in self.samples if s.at > since]
        return sum(s.jit for s in inside) / max(sum(s.span for s in inside), 1e-6)

    def window(self, start: float, end: float) -> dict:
        """CPU (cores busy, on average) and peak memory per group between two monotonic times."""
        inside = [s for s in self.samples if start < s.at <= end]
        if not inside:
            return {}
        seconds = max(sum(s.span for s in inside), 1e-6)
        groups = sorted({group for s in inside for group in s.cpu} | {group for s in inside for group in s.rss})
        cores = {group: round(sum(s.cpu.get(group, 0.0) for s in inside) / seconds, 3) for group in groups}
        ours = sum(cores.values())
        machine = sum(s.machine_busy for s in inside) / seconds
        return {
            "cpu_cores": dict(sorted(cores.items(), key=lambda item: -item[1])),
            "cpu_cores_ours": round(ours, 3),
            "cpu_cores_machine": round(machine, 3),
            "cpu_cores_other_processes": round(max(0.0, machine - ours), 3),
            # A virtual machine's steal time: its CPUs were wanted but ran another guest. Every process
            # then does the same work slower (caches, clock), so CPU per request rises with it.
            "cpu_cores_stolen": round(sum(s.stolen for s in inside) / seconds, 3),
            # Of the broker's: its JIT compilers, a start-up cost (counted in cpu_cores too).
            "broker_jit_cores": round(sum(s.jit for s in inside) / seconds, 3),
            "rss_mb_peak": {group: round(max(s.rss.get(group, 0) for s in inside) / 2**20, 1) for group in groups},
        }


def _compiler_seconds(pids: Iterable[int]) -> float:
    """CPU seconds used so far by the JIT compiler threads (``C1``/``C2 CompilerThread``) of JVMs ``pids``."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                    line = stat.read()
            except OSError:
                continue
            name, fields = line[line.index("(") + 1 : line.rindex(")")], line[line.rindex(")") + 2 :].split()
            if name.startswith(("C1 CompilerThre", "C2 CompilerThre")):
                total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15 of stat)
    return total


def _machine_busy() -> tuple[float, float]:
    """CPU seconds so far that this machine's processes used, and that the hypervisor stole (``steal``)."""
    times = psutil.cpu_times()
    stolen = getattr(times, "steal", 0.0)
    return sum(times) - times.idle - getattr(times, "iowait", 0.0) - stolen, stolen


def decided_rows(hospital_dsn: str, bank_dsn: str | None, ids: list[str]) -> dict[str, dict]:
    """Per request id: the hospital's status and timestamps, and the bank's receive/decide times (epoch seconds).

    ``bank_dsn`` None: no bank times (the bare pipeline keeps none).
    """
    rows: dict[str, dict] = {}
    with psycopg2.connect(hospital_dsn) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT id::text, status, priority, extract(epoch FROM created_at), extract(epoch FROM updated_at)"
            " FROM blood_requests_bloodrequest WHERE id = ANY(%s::uuid[])",
            [ids],
        )
        for request_id, status, priority, created, updated in cursor.fetchall():
            rows[request_id] = {
                "status": status,
                "priority": priority,
                "created": float(created),
                "updated": float(updated),
            }
    conn.close()
    if bank_dsn is None:
        return rows
    with psycopg2.connect(bank_dsn) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT request_id::text, extract(epoch FROM received_at), extract(epoch FROM decided_at)"
            " FROM allocation_bankrequest WHERE request_id = ANY(%s::uuid[])",
            [ids],
        )
        for request_id, received, decided in cursor.fetchall():
            if request_id in rows:
                rows[request_id]["bank_received"] = float(received) if received is not None else None
                rows[request_id]["bank_decided"] = float(decided) if decided is not None else None
    conn.close()
    return rows


def pending_count(hospital_dsn: str, ids: list[str]) -> int:
    with psycopg2.connect(hospital_dsn) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM blood_requests_bloodrequest WHERE status = 'PENDING' AND id = ANY(%s::uuid[])",
            [ids],
        )
        (count,) = cursor.fetchone()
    conn.close()
    return count


def cpu_model() -> str:
    """The processor's name and clock (``/proc/cpuinfo``): runs on different hosts differ by a third and more."""
    names, clocks = set(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                names.add(value.strip())
            elif key.strip() == "cpu MHz":
                clocks.add(round(float(value)))
    except OSError:
        return "unknown"
    return f"{', '.join(sorted(names)) or 'unknown'} at {'/'.join(map(str, sorted(clocks))) or '?'} MHz"


def machine_facts(load_before: tuple[float, float, float]) -> dict:
    """The machine a run's figures come from: cores, processor, Python, load average before and after the run."""
    import os
    import platform

    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
