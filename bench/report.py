"""The bench's report: a table on the terminal and one PNG (latency over rate, throughput over time, CPU)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

TARGET_P50_MS, TARGET_P99_MS, TARGET_RATE = 25, 60, 200


def print_table(results: dict) -> None:
    print(
        f"\n{'rate/s':>7} {'sent/s':>7} {'decided/s':>9} {'POST p50':>9} {'p99':>7} "
        f"{'e2e p50':>8} {'p95':>7} {'p99':>7} {'EMERG p50':>9} {'SCHED p50':>9} {'lag p99':>8} {'cores':>6} ok"
    )
    for s in results["steps"]:
        e2e, post = s["e2e_latency_ms"], s["post_latency_ms"]
        cores = s.get("processes", {}).get("cpu_cores_machine")
        print(
            f"{s['offered_rate']:>7g} {s['sent_rate']:>7} {s['decision_rate'] or 0:>9} "
            f"{post['p50']:>9} {post['p99']:>7} "
            f"{e2e['ALL']['p50']:>8} {e2e['ALL']['p95']:>7} {e2e['ALL']['p99']:>7} "
            f"{e2e['EMERGENCY']['p50']:>9} {e2e['SCHEDULED']['p50']:>9} {s['client_lag_ms']['p99']:>8} "
            f"{cores or 0:>6} {'yes' if s['sustained'] else 'NO'}"
        )
    print(f"\nmaximum sustained rate: {results['max_sustained_rate']} requests/s (target >= {TARGET_RATE})")
    at_100 = results.get("at_100_per_s")
    if at_100:
        e2e = at_100["e2e_ms"]
        print(
            f"at 100/s: end to end p50 {e2e['p50']} ms (target <= {TARGET_P50_MS}), "
            f"p99 {e2e['p99']} ms (target <= {TARGET_P99_MS})"
        )
    best = next((s for s in reversed(results["steps"]) if s["sustained"]), None)
    if best and best.get("processes"):
        procs = best["processes"]
        print(
            f"CPU at {best['offered_rate']:g}/s (cores of 2; machine busy {procs['cpu_cores_machine']}, "
            f"other processes {procs['cpu_cores_other_processes']}):"
        )
        per_request = procs.get("cpu_ms_per_request", {})
        for group, cores in procs["cpu_cores"].items():
            print(
                f"  {group:<24} {cores:6.3f} cores  {per_request.get(group, 0):6.2f} ms CPU/request  "
                f"rss {procs['rss_mb_peak'].get(group, 0):7.1f} MB"
            )
        print(
            f"  {'all of the system + client':<24} {procs['cpu_cores_ours']:6.3f} cores  "
            f"{procs.get('cpu_ms_per_request_ours', 0):6.2f} ms CPU/request"
        )


def plot(results: dict, path: Path) -> None:
    steps = results["steps"]
    rates = [s["offered_rate"] for s in steps]
    fig, (ax_lat, ax_time, ax_cpu) = plt.subplots(3, 1, figsize=(10, 13))
    fig.suptitle(f"make bench: {results['label']} (max sustained {results['max_sustained_rate']}/s)")

    for q, style in (("p50", "-o"), ("p95", "--o"), ("p99", ":o")):
        ax_lat.plot(rates, [s["e2e_latency_ms"]["ALL"][q] for s in steps], style, color="C0", label=f"end to end {q}")
        ax_lat.plot(rates, [s["post_latency_ms"][q] for s in steps], style, color="C1", label=f"POST {q}")
    ax_lat.scatter(
        [100, 100],
        [TARGET_P50_MS, TARGET_P99_MS],
        marker="x",
        color="red",
        zorder=5,
        label="targets at 100/s (p50 25, p99 60 ms)",
    )
    for s in steps:
        if not s["sustained"]:
            ax_lat.axvspan(s["offered_rate"] - 10, s["offered_rate"] + 10, color="red", alpha=0.1)
    ax_lat.set(
        xlabel="offered rate (requests/s)",
        ylabel="latency (ms, log)",
        yscale="log",
        title="latency over rate (red band: not sustained)",
    )
    ax_lat.grid(True, which="both", alpha=0.3)
    ax_lat.legend(fontsize=8, ncol=2)

    series = results["timeline"]
    ax_time.plot(series["seconds"], series["sent_per_s"], color="C1", label="requests sent/s")
    ax_time.plot(series["seconds"], series["decided_per_s"], color="C0", label="decisions stored at hospital/s")
    ax_time.set(xlabel="seconds since the ramp started", ylabel="per second", title="throughput over time")
    ax_backlog = ax_time.twinx()
    ax_backlog.plot(
        [b["t"] for b in series["backlog"]],
        [b["pending"] for b in series["backlog"]],
        color="grey",
        alpha=0.6,
        label="backlog (PENDING)",
    )
    ax_backlog.set_ylabel("backlog (requests PENDING)")
    lines = ax_time.get_legend_handles_labels()
    more = ax_backlog.get_legend_handles_labels()
    ax_time.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="upper left")
    ax_time.grid(True, alpha=0.3)

    groups = sorted({g for s in steps for g in s.get("processes", {}).get("cpu_cores", {})})
    bottom = [0.0] * len(steps)
    for index, group in enumerate(groups):
        values = [s.get("processes", {}).get("cpu_cores", {}).get(group, 0.0) for s in steps]
        ax_cpu.bar(
            [str(int(r)) for r in rates],
            values,
            bottom=bottom,
            label=group,
            color=f"C{index % 10}",
            hatch="//" if index >= 10 else None,
        )
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    other = [s.get("processes", {}).get("cpu_cores_other_processes", 0.0) for s in steps]
    ax_cpu.bar(
        [str(int(r)) for r in rates], other, bottom=bottom, label="other processes (not the bench)", color="lightgrey"
    )
    ax_cpu.axhline(2.0, color="red", linewidth=1)
    ax_cpu.set(
        xlabel="offered rate (requests/s)",
        ylabel="CPU (cores; the machine has 2)",
        title="CPU per process group while sending",
    )
    ax_cpu.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
