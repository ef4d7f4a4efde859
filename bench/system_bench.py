"""The full-system benchmark (``make bench``): the real processes, open-loop load, a rising rate.

Starts the whole system with ``scripts/stack.py``'s ``Stack`` (Apache Kafka,
3 web processes, 3 workers) on fresh PostgreSQL databases ``bench_<service>``,
stocks the bank (bulk insert, at least 5,000 units), creates several hospitals
with a staff user and token each, then drives them: requests are POSTed over
the REST API at a fixed rate, open-loop, in steps of rising rate, until a step
is not sustained. Then, on the same broker, the bare pipeline (``bench/baseline.py``:
the same work without the guarantees and the framework) goes through the same ramp, and
the report gives the ratio of the two. See ``bench/results/README.md`` for what is
measured and how.

    .venv/bin/python bench/system_bench.py                 # both ramps, about 6-8 minutes
    .venv/bin/python bench/system_bench.py --quick         # 3 short steps each, about 2.5 minutes
    .venv/bin/python bench/system_bench.py --no-baseline   # the whole system only
    .venv/bin/python bench/system_bench.py --baseline-only # the bare pipeline only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
from tqdm import tqdm

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(BENCH))

from baseline import BarePipeline  # noqa: E402
from load import Sent, run_step  # noqa: E402
from measure import CLIENT, Sampler, decided_rows, machine_facts, pending_count, summary_ms  # noqa: E402
from mix import request_bodies, units_per_key  # noqa: E402
from report import goals_met, plot, print_table  # noqa: E402
from stack import SERVICES, Stack  # noqa: E402
from warmup import (  # noqa: E402
    JIT_SETTLED_CORES,
    WARMUP_MAX_SECONDS,
    WARMUP_MORE_SECONDS,
    WARMUP_RATE,
    units_to_stock,
)
from work import WorkCounter, per_request  # noqa: E402

from shared_events.kafka_server import KafkaCluster, free_port  # noqa: E402

# Without TLS on the loopback: Debian's PostgreSQL has ``ssl = on`` (a snakeoil certificate), so libpq's
# default (``sslmode=prefer``) encrypted every statement and row between processes of one machine, which
# the compose deployment's databases (the postgres image: no TLS) never do: 3 % of the machine's CPU at
# 80 requests/s (``perf``: OpenSSL in PostgreSQL and in psycopg2), full system and bare pipeline alike.
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "sslmode": "disable"}
SUSTAINED_P99_MS = 1000.0  # beyond this the backlog is growing: the step is not sustained
DRAIN_SECONDS = 5.0  # every request of a sustained step is decided this soon after the last one was sent
CLIENT_LAG_P99_MS = 50.0  # the client kept its schedule (else the step measured the client)


@dataclass
class Target:
    """What a ramp drives: where requests are POSTed, with which tokens, and where their decisions are read."""

    url: str
    tokens: list[str]
    hospital_dsn: str
    bank_dsn: str | None  # None: no bank timestamps (the bare pipeline keeps none)


def dsn(database: str) -> str:
    return f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{database}?sslmode={PG['sslmode']}"


def fresh_database(name: str) -> str:
    conn = psycopg2.connect(dbname="postgres", **PG)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return dsn(name)


def run_in_service(stack: Stack, service: str, script: str, *args: str) -> str:
    env = stack.service_env(service) | {"DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING"}
    result = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        cwd=ROOT / f"{service}_service",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout.strip().splitlines()[-1]


def wait_decided(hospital_dsn: str, ids: list[str], timeout: float) -> float:
    """Wait until none of ``ids`` is PENDING at the hospital; return when (monotonic), or raise."""
    deadline = time.monotonic() + timeout
    while pending_count(hospital_dsn, ids):
        if time.monotonic() > deadline:
            raise TimeoutError(f"requests still pending after {timeout:.0f}s")
        time.sleep(0.2)
    return time.monotonic()


def step(
    target: Target, rate: float, seconds: float, sampler: Sampler, work: WorkCounter | None = None
) -> tuple[dict, list[Sent], dict[str, dict]]:
    bodies = request_bodies(int(rate * seconds), seed=int(rate * 1000 + seconds))
    bar = tqdm(total=len(bodies), desc=f"{rate:>5g}/s", unit="req", leave=True, mininterval=0.5, dynamic_ncols=True)
    errors = 0

    def on_done(record: Sent) -> None:
        nonlocal errors
        errors += record.status != 201
        bar.update(1)
        if bar.n % 50 == 0:
            pending = sampler.samples[-1].pending if sampler.samples else 0
            bar.set_postfix(lag_ms=f"{record.lag * 1000:.1f}", errors=errors, backlog=pending, refresh=False)

    before = work.snapshot() if work is not None else None
    started = time.monotonic()
    records = asyncio.run(run_step(url=target.url, tokens=target.tokens, bodies=bodies, rate=rate, on_done=on_done))
    last_sent = max(r.due + r.lag for r in records)
    ids = [r.request_id for r in records if r.request_id]
    try:
        drained = wait_decided(target.hospital_dsn, ids, timeout=max(30.0, seconds * 2))
        bar.set_postfix(drained_s=f"{drained - last_sent:.1f}", errors=errors)
    except TimeoutError:
        drained = None
    bar.close()
    rows = decided_rows(target.hospital_dsn, target.bank_dsn, ids)
    result = summarise(rate, seconds, records, rows, started, last_sent, drained)
    if work is not None and before is not None:
        result["work_per_request"] = per_request(
            before, work.snapshot(), len(records), counted_statements=work.counts_statements
        )
    processes = result["processes"] = sampler.window(started, last_sent)
    if processes:  # CPU time each group spends per request: comparable across machines and loads
        processes["cpu_ms_per_request"] = {
            group: round(cores * 1000 / result["sent_rate"], 2) for group, cores in processes["cpu_cores"].items()
        }
        processes["cpu_ms_per_request_ours"] = round(processes["cpu_cores_ours"] * 1000 / result["sent_rate"], 2)
        system = sum(cores for group, cores in processes["cpu_cores"].items() if group != CLIENT)
        processes["cpu_ms_per_request_system"] = round(system * 1000 / result["sent_rate"], 2)
    return result, records, rows


def summarise(
    rate: float, seconds: float, records: list[Sent], rows: dict, started: float, last_sent: float, drained
) -> dict:
    ok = [r for r in records if r.status == 201]
    decided = [(r, rows[r.request_id]) for r in ok if rows.get(r.request_id, {}).get("status", "PENDING") != "PENDING"]
    e2e = {"ALL": [row["updated"] - r.sent_wall for r, row in decided]}
    for priority in ("EMERGENCY", "SCHEDULED"):
        e2e[priority] = [row["updated"] - r.sent_wall for r, row in decided if r.priority == priority]
    legs = {  # where the time goes, per request (database timestamps, one clock)
        "post_to_created": [row["created"] - r.sent_wall for r, row in decided],
        "created_to_bank_received": [
            row["bank_received"] - row["created"] for _, row in decided if row.get("bank_received")
        ],
        "bank_received_to_decided": [
            row["bank_decided"] - row["bank_received"]
            for _, row in decided
            if row.get("bank_decided") and row.get("bank_received")
        ],
        "bank_decided_to_hospital": [
            row["updated"] - row["bank_decided"] for _, row in decided if row.get("bank_decided")
        ],
    }
    send_span = max(last_sent - started, 1e-6)
    decided_times = sorted(row["updated"] for _, row in decided)
    statuses: dict[str, int] = {}
    for _, row in decided:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    e2e_all = summary_ms(e2e["ALL"])
    sustained = (
        len(ok) == len(records)
        and drained is not None
        and drained - last_sent <= DRAIN_SECONDS
        and (e2e_all["p99"] or 0) <= SUSTAINED_P99_MS
    )
    lag = summary_ms(r.lag for r in records)
    return {
        "offered_rate": rate,
        "seconds": seconds,
        "requests": len(records),
        "sent_rate": round(len(records) / send_span, 1),
        "errors": len(records) - len(ok),
        "error_samples": sorted({r.error[:120] or str(r.status) for r in records if r.status != 201})[:5],
        "client_lag_ms": lag,
        "client_kept_schedule": (lag["p99"] or 0) <= CLIENT_LAG_P99_MS,
        "post_latency_ms": summary_ms(r.latency for r in ok),
        "e2e_latency_ms": {name: summary_ms(values) for name, values in e2e.items()},
        "e2e_legs_ms": {name: summary_ms(values) for name, values in legs.items()},
        "decided": len(decided),
        "decisions": statuses,
        "decision_rate": round(len(decided_times) / max(decided_times[-1] - decided_times[0], 1e-6), 1)
        if len(decided_times) > 1
        else None,
        "drain_seconds_after_last_send": None if drained is None else round(drained - last_sent, 2),
        "sustained": sustained,
    }


def timeline(all_records: list[Sent], all_rows: dict[str, dict], sampler: Sampler, wall0: float, mono0: float):
    """Per second since the start of the ramp: requests sent, decisions stored at the hospital, the backlog."""
    sent: dict[int, int] = {}
    decided: dict[int, int] = {}
    for record in all_records:
        sent[int(record.sent_wall - wall0)] = sent.get(int(record.sent_wall - wall0), 0) + 1
    for row in all_rows.values():
        if row["status"] != "PENDING":
            second = int(row["updated"] - wall0)
            decided[second] = decided.get(second, 0) + 1
    last = max([*sent, *decided, 0])
    backlog = [{"t": round(s.at - mono0, 1), "pending": s.pending} for s in sampler.samples if s.at >= mono0]
    return {
        "seconds": list(range(last + 1)),
        "sent_per_s": [sent.get(t, 0) for t in range(last + 1)],
        "decided_per_s": [decided.get(t, 0) for t in range(last + 1)],
        "backlog": backlog,
    }


def ramp(
    target: Target,
    sampler: Sampler,
    rates: list[float],
    seconds: float,
    keep_going: bool,
    *,
    run_through: float = 0.0,
    before_step: Callable[[float], None] | None = None,
    warmup_seconds: float = 60.0,
    work: WorkCounter | None = None,
) -> dict:
    """A warm-up step, then ``rates`` until the first step not sustained: the steps and their timeline.

    The warm-up (``WARMUP_RATE`` for ``warmup_seconds``, not measured) also lets the broker's JIT
    compile its hot paths: a new Apache Kafka spends about 0.25 core on it for a minute or more
    (0.01 after three and a half, measured per thread at 10/s), which a warm-up of a few seconds
    charged to the first steps. So the warm-up goes on, ``WARMUP_MORE_SECONDS`` at a time, until
    the broker's compiler threads use less than ``JIT_SETTLED_CORES`` (at most ``WARMUP_MAX_SECONDS``
    in all): a broker in service has compiled long ago. Each step reports what its JIT still used.

    Steps up to ``run_through`` requests/s run even after one was not sustained (so that
    a figure at a common rate is always there, marked not sustained). ``before_step(rate)``
    runs before each step, outside its measured window. ``work``: each step also counts the
    statements and messages its requests cost (``bench/work.py``). Each step goes on with the
    hospital after the last one the previous step used, so that every hospital sends
    requests however many there are.
    """
    sent = 0

    def next_target(requests: int) -> Target:
        nonlocal sent
        first, sent = sent % len(target.tokens), sent + requests
        return replace(target, tokens=target.tokens[first:] + target.tokens[:first])

    sampler.start()
    if work is not None:
        work.start()
    try:
        print(f"warming up for {warmup_seconds:g} s (the consumers join, connections open, the JIT compiles)...")
        step(next_target(int(WARMUP_RATE * warmup_seconds)), WARMUP_RATE, warmup_seconds, sampler)
        warmed = warmup_seconds
        while (jit := sampler.jit_cores(WARMUP_MORE_SECONDS)) >= JIT_SETTLED_CORES and warmed < WARMUP_MAX_SECONDS:
            print(f"  the broker's JIT still uses {jit:.2f} core: {WARMUP_MORE_SECONDS:g} s more")
            step(next_target(int(WARMUP_RATE * WARMUP_MORE_SECONDS)), WARMUP_RATE, WARMUP_MORE_SECONDS, sampler)
            warmed += WARMUP_MORE_SECONDS
        wall0, mono0 = time.time(), time.monotonic()
        steps, all_records, all_rows = [], [], {}
        failed = False
        for rate in rates:
            if before_step is not None:
                before_step(rate)
            result, records, rows = step(next_target(int(rate * seconds)), rate, seconds, sampler, work)
            steps.append(result)
            all_records += records
            all_rows |= rows
            e2e = result["e2e_latency_ms"]["ALL"]
            print(
                f"  {rate:>5g}/s: e2e p50 {e2e['p50']} ms p99 {e2e['p99']} ms, POST p50 "
                f"{result['post_latency_ms']['p50']} ms, {result['decided']}/{result['requests']} decided, "
                f"{'sustained' if result['sustained'] else 'NOT sustained'}"
            )
            failed = failed or not result["sustained"]
            if failed and not keep_going and rate >= run_through:
                break
    finally:
        sampler.stop()
        if work is not None:
            work.stop()
    sustained = [s["offered_rate"] for s in steps if s["sustained"]]
    return {
        "max_sustained_rate": max(sustained) if sustained else None,
        "warmup_seconds": warmed,  # at WARMUP_RATE, until the broker's JIT settled (see above)
        "steps": steps,
        "timeline": timeline(all_records, all_rows, sampler, wall0, mono0),
    }


def broker_pids(broker: KafkaCluster | None) -> list[int]:
    return [node.process.pid for node in (broker.nodes.values() if broker else []) if node.process]


def bench_system(
    stack: Stack,
    args: argparse.Namespace,
    rates: list[float],
    units: int,
    names: dict,
    *,
    run_through: float = 0.0,
    before_step: Callable[[float], None] | None = None,
) -> dict:
    """The whole system through the ramp; its processes are stopped after it, its broker is left running.

    ``run_through`` and ``before_step``: as ``ramp``'s (``bench/growth.py`` uses them).
    """
    dsns = {service: dsn(name) for service, name in names.items()}
    stack.prepare()
    seeding = time.monotonic()
    seeded = run_in_service(stack, "bloodbank", "seed_bank.py", str(units))
    hospitals = json.loads(run_in_service(stack, "hospital", "seed_hospitals.py", str(args.hospitals)))
    seconds_to_seed = round(time.monotonic() - seeding, 1)
    print(f"stocked {seeded} units; {len(hospitals)} hospitals with a staff token each")
    stack.start()
    try:
        stack.wait_ready()
        roots = {name: [p.popen.pid] for name, p in stack.processes.items() if p.popen}
        sampler = Sampler(
            roots=roots | {"broker": broker_pids(stack.broker), CLIENT: [os.getpid()]},
            databases={name: f"postgres: {service}" for service, name in names.items()},
            monitor_dsn=dsn("postgres"),
            hospital_dsn=dsns["hospital"],
        )
        target = Target(
            url=stack.url("hospital", "/api/v1/blood-requests/"),
            tokens=[h["token"] for h in hospitals],
            hospital_dsn=dsns["hospital"],
            bank_dsn=dsns["bloodbank"],
        )
        result = ramp(
            target,
            sampler,
            rates,
            args.step_seconds,
            args.keep_going,
            run_through=run_through,
            before_step=before_step,
            warmup_seconds=args.warmup_seconds,
            work=WorkCounter(
                dsn("postgres"), sampler.databases, stack.broker.client_config() if stack.broker else None
            ),
        )
    finally:
        for name in stack.processes:  # the broker stays up for the bare pipeline
            stack.stop_process(name)
    at_100 = next((s for s in result["steps"] if s["offered_rate"] == 100), None)
    result["at_100_per_s"] = (
        None if at_100 is None else {"e2e_ms": at_100["e2e_latency_ms"]["ALL"], "post_ms": at_100["post_latency_ms"]}
    )
    result["units_stocked"] = int(seeded)
    result["seconds_to_seed"] = seconds_to_seed  # the bank's stock, the hospitals, their users and tokens
    return result


def bench_bare(broker: KafkaCluster, args: argparse.Namespace, rates: list[float], units: int, log_dir: Path) -> dict:
    """The bare pipeline (bench/baseline.py) through the same ramp, on ``broker`` and fresh databases."""
    suffix = os.environ.get("TEST_DB_SUFFIX", "")
    names = {service: f"bench_bare_{service}{suffix}" for service in SERVICES}
    print(f"starting the bare pipeline, databases {', '.join(names.values())}")
    stock = units_per_key(units)
    pipeline = BarePipeline(
        database_urls={service: fresh_database(name) for service, name in names.items()},
        kafka_env=broker.client_env(),  # the broker's admin: may create, write and read the bare topics
        port=free_port(),
        log_dir=log_dir,
    )
    pipeline.prepare(stock)
    pipeline.start()
    try:
        pipeline.wait_ready()
        roots = {name: [popen.pid] for name, popen in pipeline.processes.items()}
        sampler = Sampler(
            roots=roots | {"broker": broker_pids(broker), CLIENT: [os.getpid()]},
            databases={name: f"postgres: {service}" for service, name in names.items()},
            monitor_dsn=dsn("postgres"),
            hospital_dsn=dsn(names["hospital"]),
        )
        target = Target(url=pipeline.url, tokens=["unused"], hospital_dsn=dsn(names["hospital"]), bank_dsn=None)
        work = WorkCounter(dsn("postgres"), sampler.databases, broker.client_config())
        result = ramp(
            target, sampler, rates, args.step_seconds, args.keep_going, warmup_seconds=args.warmup_seconds, work=work
        )
    finally:
        pipeline.stop()
    return result | {"units_stocked": sum(stock.values())}


def cpu_at(steps: list[dict], rate: float | None) -> dict | None:
    """CPU per request at ``rate`` (ms, every process of the system, the bench client left out), by group."""
    found = next((s for s in steps if s["offered_rate"] == rate and s.get("processes")), None)
    if found is None:
        return None
    procs = found["processes"]
    by_group = {group: ms for group, ms in procs["cpu_ms_per_request"].items() if group != CLIENT}
    return {"rate": rate, "total": procs["cpu_ms_per_request_system"], "by_group": by_group}


def full_vs_bare(system: dict, bare: dict) -> dict:
    """The ratios of the whole system to the bare pipeline: maximum sustained rate, CPU per request.

    CPU per request is compared at the highest rate both sustained (the same load for both).
    """

    def ratio(full: float | None, bare: float | None) -> float | None:
        return round(full / bare, 3) if full and bare else None

    both = {s["offered_rate"] for s in system["steps"] if s["sustained"]}
    both &= {s["offered_rate"] for s in bare["steps"] if s["sustained"]}
    common = max(both) if both else None
    full_cpu, bare_cpu = cpu_at(system["steps"], common), cpu_at(bare["steps"], common)
    return {
        "max_sustained_rate": ratio(system["max_sustained_rate"], bare["max_sustained_rate"]),
        "cpu_ms_per_request": ratio(full_cpu and full_cpu["total"], bare_cpu and bare_cpu["total"]),
        "at_rate": common,
        "full": {"max_sustained_rate": system["max_sustained_rate"], "cpu_ms_per_request": full_cpu},
        "bare": {"max_sustained_rate": bare["max_sustained_rate"], "cpu_ms_per_request": bare_cpu},
        # every step sustained: the bare maximum is the ramp's top, not its limit (the ratio is an upper bound)
        "bare_sustained_every_step": all(s["sustained"] for s in bare["steps"]),
    }


def bench_stack(names: dict[str, str], *, kafka_data: Path, log_dir: Path, env: dict[str, str]) -> Stack:
    """The whole system on free ports and fresh databases ``names`` (service -> database), not started yet."""
    return Stack(
        ports={service: free_port() for service in SERVICES},
        database_urls={service: fresh_database(name) for service, name in names.items()},
        broker_port=0,  # free ports
        kafka_data=kafka_data,
        log_dir=log_dir,
        env=env,
    )


def add_ramp_options(parser: argparse.ArgumentParser, *, rates: str, step_seconds: float) -> None:
    """The options of a ramp that ``make bench`` and ``make bench-growth`` share."""
    parser.add_argument("--rates", default=rates, help="requests/s of each step")
    parser.add_argument("--step-seconds", type=float, default=step_seconds)
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=60.0,
        help=f"the unmeasured warm-up at {WARMUP_RATE:g}/s before the steps (the broker's JIT, the connections)",
    )
    parser.add_argument("--keep-going", action="store_true", help="run every step even after one is not sustained")
    parser.add_argument("--label", default="", help="name of the results (default: the date and time)")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra environment for every process"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_ramp_options(parser, rates="10,20,30,40,50,60,80,100,150,200,300,400", step_seconds=15.0)
    parser.add_argument("--quick", action="store_true", help="3 steps of 8 s (20, 40, 100/s)")
    parser.add_argument("--hospitals", type=int, default=4)
    parser.add_argument("--units", type=int, default=0, help="units to stock (default: enough for the ramp, >= 5000)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--no-baseline", action="store_true", help="the whole system only, no bare pipeline")
    only.add_argument("--baseline-only", action="store_true", help="the bare pipeline only, not the whole system")
    args = parser.parse_args()
    if args.quick:
        args.rates, args.step_seconds, args.warmup_seconds = "20,40,100", 8.0, 10.0
    rates = [float(r) for r in args.rates.split(",")]
    label = args.label or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    units = args.units or units_to_stock(rates, args.step_seconds, args.warmup_seconds)

    suffix = os.environ.get("TEST_DB_SUFFIX", "")
    names = {service: f"bench_{service}{suffix}" for service in SERVICES}
    log_dir = ROOT / "var" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    kafka_data = ROOT / "var" / "bench-kafka"
    shutil.rmtree(kafka_data, ignore_errors=True)  # a fresh broker every run
    load_before = os.getloadavg()
    system: dict = {"max_sustained_rate": None, "at_100_per_s": None, "steps": [], "timeline": None}
    bare: dict | None = None
    stack: Stack | None = None
    broker: KafkaCluster | None = None
    try:
        if not args.baseline_only:
            print(f"starting the system (logs in {log_dir.relative_to(ROOT)}/), databases {', '.join(names.values())}")
            stack = bench_stack(
                names, kafka_data=kafka_data, log_dir=log_dir, env=dict(e.split("=", 1) for e in args.env)
            )
            system = bench_system(stack, args, rates, units, names)
            broker = stack.broker
        if not args.no_baseline:
            if broker is None:  # the same launcher and settings as the Stack's broker
                broker = KafkaCluster(data_dir=kafka_data)
                broker.start()
            bare = bench_bare(broker, args, rates, units, log_dir)
    finally:
        if stack is not None:
            stack.stop()
        elif broker is not None:
            broker.stop()

    results = {
        "label": label,
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": machine_facts(load_before),
        "config": {
            "rates": rates,
            "step_seconds": args.step_seconds,
            "hospitals": args.hospitals,
            "env": args.env,
            "units_stocked": system.pop("units_stocked", None),
            "seconds_to_seed": system.pop("seconds_to_seed", None),
            "open_loop": "request i of a step is due at start + i/rate, sent then whatever the latency",
            "system": not args.baseline_only,
            "baseline": not args.no_baseline,
        },
        **system,
    }
    if bare is not None:
        comparison = full_vs_bare(system, bare) if system["steps"] else None
        common = comparison["at_rate"] if comparison else bare["max_sustained_rate"]
        results["baseline"] = bare | {"cpu_ms_per_request": cpu_at(bare["steps"], common)}
        results["full_vs_bare"] = comparison
    if system["steps"]:
        results["goals_met"] = goals_met(results)  # issue 15's: 150/s sustained, latency at 50/s
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"bench-{label}.json"
    png_path = args.out / f"bench-{label}.png"
    json_path.write_text(json.dumps(results, indent=2))
    plot(results, png_path)
    for name in ("latest.json", "latest.png"):
        link = args.out / name
        link.unlink(missing_ok=True)
        link.symlink_to(json_path.name if name.endswith("json") else png_path.name)
    print_table(results)
    print(f"\nresults: {json_path}, {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
