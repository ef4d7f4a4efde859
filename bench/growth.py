"""How the cost grows with the work (``make bench-growth``): hospitals 10, 100, 1,000 and stock 5,000, 100,000 units.

For each configuration the whole system is started afresh as ``make bench`` starts
it and driven by the same open-loop ramp (``system_bench.bench_system``: fresh
databases and broker, the bank stocked, each hospital with a staff user and token,
a warm-up, then the steps), shorter: 20, 50, 100, 150 and 200 requests/s for 10 s
each by default, until a step is not sustained (the steps up to the common rate,
50/s, always run, so every configuration has a figure there). Requests go round
robin over all the hospitals, continuing from step to step.

The stock size is held at every step: before each step the bank is topped back
up to its configured number of AVAILABLE units, in the proportions of the demand
(``seed_bank.py --restock``), so that a step at 200/s (about 4,000 units) does not
empty a 5,000-unit bank and turn the next steps into rejections.

Writes ``bench/results/growth-<label>.json`` (every step of every configuration)
and ``growth-<label>.md`` (the table: configuration -> maximum sustained rate,
end-to-end p50/p99 and POST p99 at the common rate, CPU per request at the common
rate and at the maximum sustained rate), and links
``growth-latest.json`` / ``growth-latest.md`` to them. See ``bench/results/README.md``.

    .venv/bin/python bench/growth.py                                   # about 12-15 minutes
    .venv/bin/python bench/growth.py --configs 10x5000 --rates 20,50 --step-seconds 5   # a check
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg2

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

sys.path.insert(0, str(BENCH.parent / "scripts"))

from measure import machine_facts  # noqa: E402
from stack import SERVICES, Stack  # noqa: E402
from system_bench import ROOT, add_ramp_options, bench_stack, bench_system, dsn, run_in_service  # noqa: E402

DEFAULT_CONFIGS = "10x5000,100x5000,1000x5000,10x100000"  # HOSPITALSxUNITS
OUTBOX_DRAINED_TIMEOUT = 30.0


def parse_configs(text: str) -> list[tuple[int, int]]:
    configs = []
    for item in text.split(","):
        hospitals, units = item.lower().split("x")
        configs.append((int(hospitals), int(units)))
    return configs


def config_name(hospitals: int, units: int) -> str:
    return f"{hospitals:,} hospitals, {units:,} units"


def restock(stack: Stack, bank_dsn: str, units: int) -> int:
    """Top the bank back up to ``units`` AVAILABLE; wait until its stock events have left the outbox."""
    added = int(run_in_service(stack, "bloodbank", "seed_bank.py", str(units), "--restock"))
    deadline = time.monotonic() + OUTBOX_DRAINED_TIMEOUT
    with psycopg2.connect(bank_dsn) as conn:
        conn.autocommit = True
        with conn.cursor() as cursor:
            while True:
                cursor.execute("SELECT count(*) FROM shared_events_outboxevent WHERE sent_at IS NULL")
                if cursor.fetchone()[0] == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
    conn.close()
    return added


def hospitals_that_sent(hospital_dsn: str) -> int:
    """How many hospitals the bench's requests came from (the load is meant to reach them all)."""
    with psycopg2.connect(hospital_dsn) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT count(DISTINCT hospital_id) FROM blood_requests_bloodrequest WHERE patient_reference LIKE 'BENCH-%'"
        )
        (count,) = cursor.fetchone()
    conn.close()
    return count


def run_config(hospitals: int, units: int, args: argparse.Namespace, env: dict[str, str]) -> dict:
    """One configuration on a system started afresh, as ``make bench`` starts it (``system_bench.bench_system``)."""
    suffix = os.environ.get("TEST_DB_SUFFIX", "")
    names = {service: f"bench_{service}{suffix}" for service in SERVICES}
    dsns = {service: dsn(name) for service, name in names.items()}
    log_dir = ROOT / "var" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    kafka_data = ROOT / "var" / "bench-kafka"
    shutil.rmtree(kafka_data, ignore_errors=True)  # a fresh broker every configuration
    print(f"\n=== {config_name(hospitals, units)} ===")
    print(f"starting the system (logs in {log_dir.relative_to(ROOT)}/), databases {', '.join(names.values())}")
    started = time.monotonic()
    stack = bench_stack(names, kafka_data=kafka_data, log_dir=log_dir, env=env)
    restocked: list[dict] = []

    def before_step(rate: float) -> None:
        restocked.append({"before_rate": rate, "units_added": restock(stack, dsns["bloodbank"], units)})

    options = argparse.Namespace(
        hospitals=hospitals,
        step_seconds=args.step_seconds,
        keep_going=args.keep_going,
        warmup_seconds=args.warmup_seconds,
    )
    try:
        result = bench_system(
            stack, options, args.rates, units, names, run_through=args.common_rate, before_step=before_step
        )
    finally:
        stack.stop()
    steps = result["steps"]
    sustained = [s for s in steps if s["sustained"]]
    best = max(sustained, key=lambda s: s["offered_rate"]) if sustained else None
    common = next((s for s in steps if s["offered_rate"] == args.common_rate), None)
    return {
        "name": config_name(hospitals, units),
        "hospitals": hospitals,
        "units": units,
        "units_stocked": result["units_stocked"],
        "seconds_to_seed": result["seconds_to_seed"],
        "seconds": round(time.monotonic() - started, 1),
        "hospitals_that_sent": hospitals_that_sent(dsns["hospital"]),
        "restocked": restocked,
        "max_sustained_rate": None if best is None else best["offered_rate"],
        "at_max_sustained_rate": None if best is None else at_rate(best),
        "at_common_rate": None if common is None else at_rate(common),
        "steps": steps,
    }


def at_rate(step: dict) -> dict:
    processes = step.get("processes", {})
    return {
        "rate": step["offered_rate"],
        "sustained": step["sustained"],
        "e2e_ms": step["e2e_latency_ms"]["ALL"],
        "post_ms": step["post_latency_ms"],
        "cpu_ms_per_request": processes.get("cpu_ms_per_request_system"),  # the bench client left out
        "cpu_ms_per_request_by_process": processes.get("cpu_ms_per_request", {}),
    }


def markdown(results: dict) -> str:
    rate = f"{results['config']['common_rate']:g}/s"
    lines = [
        f"# make bench-growth: {results['label']}",
        "",
        f"Ramp {', '.join(f'{r:g}' for r in results['config']['rates'])} requests/s, "
        f"{results['config']['step_seconds']:g} s per step; load average before "
        f"{results['machine']['load_average_before'][0]}, after {results['machine']['load_average_after'][0]}.",
        "",
        f"| configuration | max sustained | e2e p50 / p99 at {rate} | POST p99 at {rate} "
        f"| CPU ms/request at {rate} | CPU ms/request at max sustained | hospitals that sent | seeding |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for config in results["configs"]:
        common = config["at_common_rate"]
        if common is None:
            latency = post = cpu = "not reached"
        else:
            mark = "" if common["sustained"] else " (not sustained)"
            latency = f"{common['e2e_ms']['p50']} / {common['e2e_ms']['p99']} ms{mark}"
            post = f"{common['post_ms']['p99']} ms"
            cpu = f"{common['cpu_ms_per_request']}"
        best = config["at_max_sustained_rate"]
        top = "none" if best is None else f"{best['rate']:g}/s"
        top_cpu = "" if best is None else f"{best['cpu_ms_per_request']}"
        lines.append(
            f"| {config['name']} | {top} | {latency} | {post} | {cpu} | {top_cpu} "
            f"| {config['hospitals_that_sent']:,} of {config['hospitals']:,} | {config['seconds_to_seed']} s |"
        )
    lines += [
        "",
        "CPU ms/request: the CPU time of every process of the system (the bench client left out) while "
        "sending, divided by the rate sent (at a step not sustained the CPU was capped: it understates the "
        "cost). Seeding: stocking the bank and creating the hospitals, their staff users and tokens.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="HOSPITALSxUNITS, comma-separated")
    add_ramp_options(parser, rates="20,50,100,150,200", step_seconds=10.0)
    parser.add_argument("--common-rate", type=float, default=50.0, help="the rate every configuration is compared at")
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",")]
    if args.common_rate not in args.rates:
        parser.error(f"--common-rate {args.common_rate:g} is not one of --rates")
    label = args.label or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    env = dict(item.split("=", 1) for item in args.env)
    load_before = os.getloadavg()
    configs = [run_config(hospitals, units, args, env) for hospitals, units in parse_configs(args.configs)]
    results = {
        "label": label,
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": machine_facts(load_before),
        "config": {
            "rates": args.rates,
            "step_seconds": args.step_seconds,
            "common_rate": args.common_rate,
            "env": args.env,
            "stock": "topped back up to the configured AVAILABLE units before every step",
        },
        "configs": configs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"growth-{label}.json"
    md_path = args.out / f"growth-{label}.md"
    json_path.write_text(json.dumps(results, indent=2))
    table = markdown(results)
    md_path.write_text(table)
    for path in (json_path, md_path):
        link = args.out / f"growth-latest{path.suffix}"
        link.unlink(missing_ok=True)
        link.symlink_to(path.name)
    print("\n" + table)
    print(f"results: {json_path}, {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
