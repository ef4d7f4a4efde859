"""Before and after on the same machine (``make bench-ab``): a base commit and this checkout, in alternating runs.

This machine's figures move by 10 to 20 % from day to day and by several percent from run to run
(other tenants, CPU frequency), more than most single changes save. A comparison of today's run with
yesterday's says little; runs of the base and of the change taken in turns, a few minutes apart, do.
For each round this runs ``system_bench.py`` on the base (a git worktree of ``--base`` in
``var/bench-ab/base``, its own ``shared_events`` first on the path) and then on this checkout, the
whole system only (no bare pipeline), with the same ramp; then it prints, per rate and process, the
CPU per request of each run, the mean of each side and the change of the means, with the spread of
each side beside it: a change smaller than the spread is not one.

Writes ``bench/results/bench-ab-<label>-{base,change}-<round>.json`` and ``.log`` (each run as
``make bench`` writes it, and its output) and ``ab-<label>.json`` (the comparison). With one round
there is no spread to judge a change by, and the table says so.

    .venv/bin/python bench/ab.py --base HEAD~1                         # 2 rounds of 30 and 40/s, ~20 minutes
    .venv/bin/python bench/ab.py --base main --rounds 3 --rates 20,40
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from statistics import mean
from typing import Any

from measure import CLIENT

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORKTREE = ROOT / "var" / "bench-ab" / "base"

TOTAL = "all of the system"
LATENCY_ROWS = ("e2e p99 (ms)", "POST p99 (ms)", "decided/s")


def step_figures(step: Mapping[str, Any]) -> dict[str, float]:
    """One step's figures: CPU ms per request of each process and of the system, its latencies and decision rate."""
    figures = dict(step["processes"]["cpu_ms_per_request"])
    figures.pop(CLIENT, None)  # the load generator, not the system
    figures[TOTAL] = step["processes"]["cpu_ms_per_request_system"]
    figures["e2e p99 (ms)"] = step["e2e_latency_ms"]["ALL"]["p99"]
    figures["POST p99 (ms)"] = step["post_latency_ms"]["p99"]
    figures["decided/s"] = step["decision_rate"]
    return figures


def compare(base_runs: Iterable[Mapping[str, Any]], change_runs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per rate and figure: each side's runs, mean and spread (max - min), and the change of the means.

    Only the rates every run measured are compared (a run stops at its first step not sustained
    unless ``--keep-going``, which ``bench/ab.py`` always passes).
    """
    sides = {"base": list(base_runs), "change": list(change_runs)}
    by_side = {
        side: [{step["offered_rate"]: step_figures(step) for step in run["steps"]} for run in runs]
        for side, runs in sides.items()
    }
    rates = sorted(set.intersection(*(set(run) for runs in by_side.values() for run in runs)))
    result: dict[str, Any] = {}
    for rate in rates:
        names = sorted({name for runs in by_side.values() for run in runs for name in run[rate]})
        rows = {}
        for name in names:
            row: dict[str, Any] = {}
            for side, runs in by_side.items():
                values = [run[rate][name] for run in runs if run[rate].get(name) is not None]
                row[side] = {
                    "runs": values,
                    "mean": round(mean(values), 2) if values else None,
                    "spread": round(max(values) - min(values), 2) if values else None,
                }
            if row["base"]["mean"] is not None and row["change"]["mean"] is not None:
                row["change_of_means"] = round(row["change"]["mean"] - row["base"]["mean"], 2)
                one_run = min(len(row["base"]["runs"]), len(row["change"]["runs"])) < 2  # no spread to judge by
                spread = max(row["base"]["spread"], row["change"]["spread"])
                row["beyond_spread"] = None if one_run else abs(row["change_of_means"]) > spread
            rows[name] = row
        result[str(rate)] = rows
    return result


def table(comparison: Mapping[str, Any]) -> str:
    """The comparison as text: the system's total first, then the processes by their base cost, then latencies."""
    lines = []
    for rate, rows in comparison.items():
        lines.append(f"--- {float(rate):g} requests/s: CPU ms per request (runs), mean, change of the means")
        processes = sorted(
            (name for name in rows if name not in LATENCY_ROWS and name != TOTAL),
            key=lambda name: -(rows[name]["base"]["mean"] or 0),
        )
        for name in [TOTAL, *processes, *LATENCY_ROWS]:
            row = rows.get(name)
            if row is None:
                continue
            base, change = row["base"], row["change"]
            delta = row.get("change_of_means")
            mark = "" if delta is None else f"{delta:+8.2f}{_judged(row['beyond_spread'])}"
            lines.append(
                f"  {name:26s} base {_runs(base['runs']):>22s} = {base['mean'] or 0:7.2f}   "
                f"change {_runs(change['runs']):>22s} = {change['mean'] or 0:7.2f}  {mark}"
            )
    return "\n".join(lines)


def _judged(beyond_spread: bool | None) -> str:
    if beyond_spread is None:
        return "  (one run a side: no spread to judge by)"
    return "" if beyond_spread else "  (within the spread)"


def _runs(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def prepare_base(revision: str) -> Path:
    """A worktree of ``revision`` in var/bench-ab/base (replacing an earlier one), with this checkout's broker jars."""
    if WORKTREE.exists():
        subprocess.run(["git", "worktree", "remove", "--force", str(WORKTREE)], cwd=ROOT, check=False)
        shutil.rmtree(WORKTREE, ignore_errors=True)
    WORKTREE.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "worktree", "add", "--detach", str(WORKTREE), revision], cwd=ROOT, check=True)
    jars = ROOT / "kafka" / "jars"
    if jars.exists():  # the same Kafka version (else the base fetches its own from Maven Central)
        shutil.copytree(jars, WORKTREE / "kafka" / "jars", dirs_exist_ok=True)
    return WORKTREE


def run_side(checkout: Path, label: str, args: argparse.Namespace) -> dict[str, Any]:
    """One ``system_bench.py`` run of ``checkout`` (its own ``shared_events`` on the path, this interpreter)."""
    env = os.environ | {"PYTHONPATH": str(checkout / "shared_events")}
    command = [
        sys.executable, str(checkout / "bench" / "system_bench.py"), "--no-baseline", "--keep-going",
        "--rates", args.rates, "--step-seconds", str(args.step_seconds), "--label", label, "--out", str(args.out),
    ]  # fmt: skip
    log = args.out / f"{label}.log"
    print(f"{label}: {checkout} (output in {log})", flush=True)
    with log.open("w") as output:
        result = subprocess.run(command, cwd=checkout, env=env, check=False, stdout=output, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise SystemExit(f"{label} failed (exit {result.returncode}); the end of {log}:\n{log.read_text()[-3000:]}")
    return json.loads((args.out / f"bench-{label}.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="HEAD~1", help="the commit to compare this checkout with")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each side, taken in turns")
    parser.add_argument("--rates", default="30,40", help="requests/s of each step (the same for both)")
    parser.add_argument("--step-seconds", type=float, default=30.0)
    parser.add_argument("--label", default=datetime.now(UTC).strftime("%Y%m%d-%H%M"))
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    base = prepare_base(args.base)
    runs: dict[str, list[dict[str, Any]]] = {"base": [], "change": []}
    for round_ in range(1, args.rounds + 1):
        for side, checkout in (("base", base), ("change", ROOT)):
            runs[side].append(run_side(checkout, f"ab-{args.label}-{side}-{round_}", args))
    comparison = compare(runs["base"], runs["change"])
    revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    out = args.out / f"ab-{args.label}.json"
    out.write_text(json.dumps({"base": args.base, "change": revision, "comparison": comparison}, indent=2) + "\n")
    print(table(comparison))
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
