"""The bank decision rate of one worker, through the broker: ``make bench-micro`` (goal: at least 400 decisions/s).

Run: ``cd bloodbank_service && ../.venv/bin/python bench/worker_bench.py [--requests N] [--profile always|never]``

``allocation_bench.py`` times the handler path alone (``EventConsumer.process_batch``
on messages made in memory: inbox, decision, outbox rows), without Kafka and without
the outbox relay. This bench times what one worker really does: Apache Kafka is
started as ``make run`` starts it (one node, SASL/SCRAM + ACLs, the topics), the bank's
database is fresh (``bench_micro_bloodbank$TEST_DB_SUFFIX``) and stocked for the load,
N ``hospital.blood.requested`` events of ``make bench``'s request mix (70 % EMERGENCY,
decided on arrival; 30 % SCHEDULED, decided by the worker's waiting-request task) are
produced to the topic first, with the hospital's login, keyed by request id as the
hospital's relay keys them. Then one worker process starts (``manage.py run_worker``:
the consumer loop, which polls batches and handles each in one transaction, and the
outbox relay thread, which publishes the decision and stock events to the broker) and
drains them. Timed from the first request the bank recorded (``received_at``) to:

* the last decision (``decided_at``): **decisions/s**;
* the last of those events the relay published (``sent_at``): **drained/s**, the
  worker's rate with its publishing included (the goal is compared with this one).

The worker's, the bank database's and the broker's CPU time over the same window
are divided by N. When the rate is below the goal (or with ``--profile always``) a
second pass (new events, a new worker) runs with ``py-spy record`` attached to the
worker for the drain and prints where each of its threads spends its time (the timed
pass is never profiled). Writes ``bench/results/micro-<label>.json`` and links ``micro-latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import psycopg2

SERVICE_DIR = Path(__file__).resolve().parent.parent
ROOT = SERVICE_DIR.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))

from measure import machine_facts  # noqa: E402
from mix import MEAN_UNITS, request_bodies  # noqa: E402
from stack import Stack  # noqa: E402
from system_bench import dsn, fresh_database, run_in_service  # noqa: E402

from shared_events.envelope import build_event  # noqa: E402
from shared_events.kafka_server import KafkaCluster, sasl_client_config  # noqa: E402
from shared_events.topics import REQUESTED, topic_name  # noqa: E402
from shared_events.wire import event_headers  # noqa: E402

GOAL = 400.0  # decisions/s of one worker (issue 15)
HOSPITALS = 10
NAMESPACE = uuid.UUID("0d7c1c8e-2b1f-4d6e-9a36-5be1c1f0b3a7")  # as bench/seed_hospitals.py
PY_SPY = Path(sys.executable).parent / "py-spy"


def start_kafka(stack: Stack) -> None:
    """Apache Kafka, the topics and every principal's login, as ``Stack.prepare`` makes them (no other service)."""
    stack.metrics_dir("bloodbank").mkdir(parents=True, exist_ok=True)
    stack.broker = KafkaCluster(data_dir=stack.kafka_data, size=1)
    stack.broker.start()
    stack.kafka_bootstrap = stack.broker.bootstrap_servers
    stack._prepare_kafka()


def produce(stack: Stack, count: int, seed: int) -> list[str]:
    """``count`` requested events (the bench's mix, over HOSPITALS hospitals) on the topic; returns their ids."""
    from confluent_kafka import Producer

    config = {"bootstrap.servers": stack.kafka_bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5}
    if stack.kafka_secured:
        config |= sasl_client_config("hospital", stack.kafka_passwords["hospital"])
    producer = Producer(config)
    topic = topic_name(REQUESTED)
    now = datetime.now(UTC)
    ids = []
    failures = []
    for index, body in enumerate(request_bodies(count, seed=seed)):
        number = index % HOSPITALS + 1
        request_id = str(uuid.uuid4())
        payload = {
            "request_id": request_id,
            "hospital_id": str(uuid.uuid5(NAMESPACE, f"Bench Hospital {number}")),
            "hospital_name": f"Bench Hospital {number}",
            "blood_group": body["blood_group"],
            "component": body["component"],
            "units": body["units"],
            "priority": body["priority"],
            "needed_by": body.get("needed_by"),
            "allow_partial": body["priority"] == "EMERGENCY",  # the hospital's default
            "group_confirmed": body["group_confirmed"],
            "patient_reference": body["patient_reference"],
            "requested_by": f"bench_staff_{number}",
            "requested_at": (now + timedelta(microseconds=index)).isoformat(),
        }
        event = build_event(
            REQUESTED, payload, source="hospital-service", subject=request_id, correlation_id=request_id
        )
        producer.produce(
            topic,
            key=request_id,
            value=event.to_bytes(),
            headers=event_headers(),
            on_delivery=lambda err, _msg: failures.append(err) if err else None,
        )
        producer.poll(0)
        ids.append(request_id)
    producer.flush(60)
    if failures:
        raise RuntimeError(f"{len(failures)} events not delivered: {failures[0]}")
    return ids


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        out[pid] = times.user + times.system
    return out


def backend_pids(cursor, database: str) -> list[int]:
    cursor.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        [database],
    )
    return [row[0] for row in cursor.fetchall()]


def drain(stack: Stack, ids: list[str], database: str, *, profile: Path | None, timeout: float) -> dict:
    """Start one worker, wait until it decided every request in ``ids`` and published every event; measure."""
    name = f"bloodbank-worker-{uuid.uuid4().hex[:6]}"
    process = stack.add_worker("bloodbank", name)
    process.env["KAFKA_GROUP_INSTANCE_ID"] = "bloodbank-worker"  # the same member each pass: no rebalance wait
    stack.start_process(name)
    profiler = None
    bank = psycopg2.connect(dsn(database))
    bank.autocommit = True
    monitor = psycopg2.connect(dsn("postgres"))
    monitor.autocommit = True
    worker_pid = None
    try:
        deadline = time.monotonic() + timeout
        started = cpu = None
        with bank.cursor() as cursor, monitor.cursor() as mon:
            while True:
                cursor.execute(
                    "SELECT count(*), count(decided_at) FROM allocation_bankrequest WHERE request_id = ANY(%s::uuid[])",
                    [ids],
                )
                received, decided = cursor.fetchone()
                if received and started is None:  # the worker is consuming: the window opens
                    worker_pid = process.popen.pid
                    if profile is not None:
                        profiler = _profile(worker_pid, profile)
                    started = time.monotonic()
                    pids = [worker_pid, *backend_pids(mon, database), *_broker_pids(stack)]
                    cpu = cpu_seconds(pids)
                if decided == len(ids):
                    cursor.execute("SELECT count(*) FROM shared_events_outboxevent WHERE sent_at IS NULL")
                    if cursor.fetchone()[0] == 0:
                        break
                if process.popen.poll() is not None:
                    raise RuntimeError(f"the worker exited ({process.popen.returncode}); see var/bench-logs/{name}.log")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{decided} of {len(ids)} decided after {timeout:.0f}s")
                time.sleep(0.05)
            wall = time.monotonic() - started
            backends = backend_pids(mon, database)
            after = cpu_seconds([worker_pid, *backends, *_broker_pids(stack)])
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)  # py-spy writes its file and exits
                profiler.wait(timeout=60)
        used = {pid: after[pid] - cpu.get(pid, 0.0) for pid in after}
        groups = {
            "worker": used.get(worker_pid, 0.0),
            "postgres: bloodbank": sum(used.get(pid, 0.0) for pid in backends),
            "broker": sum(used.get(pid, 0.0) for pid in _broker_pids(stack)),
        }
        with bank.cursor() as cursor:
            cursor.execute(
                "SELECT extract(epoch FROM min(received_at)), extract(epoch FROM max(decided_at)),"
                " percentile_disc(0.1) WITHIN GROUP (ORDER BY decided_at),"
                " percentile_disc(0.9) WITHIN GROUP (ORDER BY decided_at),"
                " count(*) FILTER (WHERE priority = 'EMERGENCY')"
                " FROM allocation_bankrequest WHERE request_id = ANY(%s::uuid[])",
                [ids],
            )
            first, last_decided, p10, p90, emergencies = cursor.fetchone()
            cursor.execute(
                "SELECT status, count(*) FROM allocation_bankrequest WHERE request_id = ANY(%s::uuid[]) GROUP BY 1",
                [ids],
            )
            statuses = dict(cursor.fetchall())
            cursor.execute(
                "SELECT extract(epoch FROM max(sent_at)), count(*) FROM shared_events_outboxevent"
                " WHERE created_at >= to_timestamp(%s)",
                [float(first)],
            )
            last_sent, published = cursor.fetchone()
        first, last_decided, last_sent = float(first), float(last_decided), float(last_sent or last_decided)
        n = len(ids)
        middle = (p90 - p10).total_seconds()
        return {
            "requests": n,
            "emergency": emergencies,
            "decisions": statuses,
            "events_published": published,
            "decisions_per_s": round(n / max(last_decided - first, 1e-6), 1),
            "decisions_per_s_middle_80pct": round(0.8 * n / middle, 1) if middle > 0 else None,
            "drained_per_s": round(n / max(max(last_decided, last_sent) - first, 1e-6), 1),
            "seconds_first_received_to_last_decided": round(last_decided - first, 2),
            "seconds_first_received_to_last_published": round(max(last_decided, last_sent) - first, 2),
            "cpu_ms_per_decision": {group: round(seconds * 1000 / n, 3) for group, seconds in groups.items()},
            "worker_cpu_cores": round(groups["worker"] / wall, 2),
            "profiled": profile is not None,
        }
    finally:
        bank.close()
        monitor.close()
        if profiler is not None and profiler.poll() is None:
            profiler.kill()
            profiler.wait()
        stack.stop_process(name)


def _profile(pid: int, path: Path) -> subprocess.Popen:
    """py-spy sampling ``pid``'s threads 100 times a second, waiting included (``--idle``), until SIGINT."""
    command = [str(PY_SPY), "record", "--pid", str(pid), "--idle", "-r", "100", "-f", "raw", "-o", str(path)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _broker_pids(stack: Stack) -> list[int]:
    return [node.process.pid for node in stack.broker.nodes.values() if node.process]


PROJECT_CODE = ("allocation/", "inventory/", "traceability/", "shared_events/", "config/")
WAITS = {  # innermost frames that wait (for PostgreSQL, for the broker, for work) rather than compute
    "CursorWrapper._execute (django/db/backends/utils.py)": "PostgreSQL statements",
    "BaseDatabaseWrapper._commit (django/db/backends/base/base.py)": "PostgreSQL commits",
    "OutboxRelay._wait_for_work (shared_events/django/relay.py)": "waiting for work (LISTEN)",
    "EventConsumer._poll_batch (shared_events/django/consumer.py)": "polling the broker",
    "producer.flush: waiting for the broker's acks (shared_events/django/relay.py)": "the broker's acks",
}


def _flush_frames() -> set[str]:
    """The relay's lines that wait for the broker's acknowledgements (``producer.flush``), as py-spy names them."""
    import importlib.util

    spec = importlib.util.find_spec("shared_events")
    relay = Path(next(iter(spec.submodule_search_locations))) / "django" / "relay.py"
    lines = relay.read_text().splitlines()
    return {
        f"OutboxRelay.publish_batch (shared_events/django/relay.py:{number})"
        for number, text in enumerate(lines, start=1)
        if "producer.flush(" in text
    }


def top_costs(raw: Path, count: int = 12) -> dict:
    """py-spy's raw stacks (``--idle``: wall-clock time, waiting included), per thread of the worker.

    A sample belongs to the relay thread when ``OutboxRelay`` is on its stack, to the
    consumer loop when ``EventConsumer`` is, else to ``other`` (the heartbeat, librdkafka's
    callbacks). Per thread: the share of its time spent waiting (``WAITS``: the innermost
    frame is a PostgreSQL statement or commit, the broker's poll, the relay's LISTEN) and
    the rest, Python on the CPU; where the time is spent (the innermost frame); the
    innermost function of the project's own code on the stack (so a statement's wait counts
    for the function that issued it), over all the samples and over the Python ones
    only; each project function with its callees (those on nearly every sample left
    out). Line numbers are dropped.
    """
    roles: dict[str, dict[str, Counter[str]]] = {}
    samples: Counter[str] = Counter()
    flush = _flush_frames()
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        n = int(number)
        innermost = stack.rsplit(";", 1)[-1]
        frames = [_no_line(frame) for frame in stack.split(";")]
        if innermost in flush:
            frames[-1] = "producer.flush: waiting for the broker's acks (shared_events/django/relay.py)"
        role = (
            "relay"
            if any("OutboxRelay" in frame for frame in frames)
            else "consumer"
            if any("EventConsumer" in frame for frame in frames)
            else "other"
        )
        counters = roles.setdefault(
            role,
            {"time": Counter(), "self": Counter(), "project": Counter(), "python": Counter(), "inclusive": Counter()},
        )
        samples[role] += n
        wait = WAITS.get(frames[-1])
        counters["time"][wait or "Python (on the CPU)"] += n
        counters["self"][frames[-1]] += n
        ours = [frame for frame in frames if any(f"({prefix}" in frame for prefix in PROJECT_CODE)]
        if ours:
            counters["project"][ours[-1]] += n
            if wait is None:
                counters["python"][ours[-1]] += n
        for frame in set(ours):
            counters["inclusive"][frame] += n
    out = {}
    for role, n in samples.most_common():
        share = lambda k, total=n: round(100 * k / max(total, 1), 1)  # noqa: E731
        python = roles[role]["time"]["Python (on the CPU)"]
        out[role] = {
            "samples": n,
            "time_pct": {what: share(k) for what, k in roles[role]["time"].most_common()},
            "innermost_pct": [(frame, share(k)) for frame, k in roles[role]["self"].most_common(count)],
            "innermost_project_function_pct": [
                (frame, share(k)) for frame, k in roles[role]["project"].most_common(count)
            ],
            "python_by_project_function_pct_of_python": [
                (frame, share(k, python)) for frame, k in roles[role]["python"].most_common(count)
            ],
            "project_function_with_callees_pct": [
                (frame, share(k)) for frame, k in roles[role]["inclusive"].most_common() if k < 0.98 * n
            ][:count],
        }
    return out


def _no_line(frame: str) -> str:
    """``f (path.py:12)`` -> ``f (path.py)``."""
    head, sep, tail = frame.rpartition(":")
    return f"{head})" if sep and tail.rstrip(")").isdigit() else frame


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000, help="events drained by the worker")
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="a second pass under py-spy for the worker's top costs (auto: when the first is below the goal)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds a pass may take")
    parser.add_argument("--label", default="", help="name of the results (default: the date and time)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    label = args.label or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    database = f"bench_micro_bloodbank{os.environ.get('TEST_DB_SUFFIX', '')}"
    log_dir = ROOT / "var" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(
        database_urls={"bloodbank": fresh_database(database)},
        kafka_data=ROOT / "var" / "bench-micro-kafka",
        log_dir=log_dir,
        run_dir=ROOT / "var" / "bench-micro-run",
    )
    load_before = os.getloadavg()
    results: dict = {}
    try:
        print("starting Apache Kafka, migrating and stocking the bank...")
        shutil.rmtree(stack.kafka_data, ignore_errors=True)  # a fresh broker every run
        start_kafka(stack)
        stack._run_step("bloodbank", "migrate", "--noinput")
        stack._run_step("bloodbank", "createcachetable")
        units = int(2 * args.requests * MEAN_UNITS * 1.3) + 2000  # enough for both passes
        stocked = run_in_service(stack, "bloodbank", "seed_bank.py", str(units))
        print(f"stocked {stocked} units")
        print(f"\none bank worker draining {args.requests} requested events (consumer + relay, through the broker):")
        ids = produce(stack, args.requests, seed=1)
        timed = drain(stack, ids, database, profile=None, timeout=args.timeout)
        _print_pass(timed)
        results = {"timed": timed}
        if args.profile == "always" or (args.profile == "auto" and timed["drained_per_s"] < GOAL):
            profile = ROOT / "var" / "bench-micro-run" / f"worker-profile-{label}.txt"
            print(f"\nthe same under py-spy (profile in {profile.relative_to(ROOT)}):")
            ids = produce(stack, args.requests, seed=2)
            profiled = drain(stack, ids, database, profile=profile, timeout=args.timeout)
            _print_pass(profiled)
            profiled["profile_file"] = str(profile.relative_to(ROOT))
            profiled["top_costs"] = top_costs(profile)
            _print_profile(profiled["top_costs"])
            results["profiled"] = profiled
    finally:
        stack.stop()
    rate = timed["drained_per_s"]
    verdict = "meets" if rate >= GOAL else "is below"
    print(f"\none worker: {rate:.0f} decisions/s drained (decided and published); {verdict} the goal of {GOAL:.0f}/s")
    out = {
        "label": label,
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": machine_facts(load_before),
        "measures": (
            "one bank worker process (consumer loop + outbox relay thread) draining N hospital.blood.requested "
            "events pre-loaded into Apache Kafka, on PostgreSQL; N / (first received_at to the last decision and "
            "the last event it caused published)"
        ),
        "goal_decisions_per_s": GOAL,
        "one_worker_decisions_per_s": rate,
        "meets_goal": rate >= GOAL,
        "units_stocked": int(stocked),
        **results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"micro-{label}.json"
    path.write_text(json.dumps(out, indent=2))
    link = args.out / "micro-latest.json"
    link.unlink(missing_ok=True)
    link.symlink_to(path.name)
    print(f"results: {path}")
    return 0


def _print_pass(result: dict) -> None:
    cpu = result["cpu_ms_per_decision"]
    print(
        f"  decisions/s {result['decisions_per_s']:7.1f}   (middle 80 %: {result['decisions_per_s_middle_80pct']})\n"
        f"  drained/s   {result['drained_per_s']:7.1f}   (every decision and stock event published too)\n"
        f"  {result['decisions']}, {result['events_published']} events published\n"
        f"  CPU per decision: worker {cpu['worker']} ms ({result['worker_cpu_cores']} cores busy), "
        f"PostgreSQL {cpu['postgres: bloodbank']} ms, broker {cpu['broker']} ms"
    )


def _print_profile(costs: dict) -> None:
    for role, figures in costs.items():
        split = ", ".join(f"{what} {pct} %" for what, pct in figures["time_pct"].items())
        print(f"  {role} thread: {figures['samples']} samples (100/s, waiting included): {split}")
        tables = (
            ("where the time is (innermost frame)", "innermost_pct"),
            (
                "the innermost function of the project's code (statements' waits included)",
                "innermost_project_function_pct",
            ),
            (
                "the same, Python on the CPU only (% of the thread's Python samples)",
                "python_by_project_function_pct_of_python",
            ),
            ("the project's functions, callees included", "project_function_with_callees_pct"),
        )
        for title, key in tables:
            print(f"    {title}:")
            for frame, pct in figures[key][:8]:
                print(f"      {pct:5.1f} %  {frame}")


if __name__ == "__main__":
    sys.exit(main())
