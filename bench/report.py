"""The bench's report: a table on the terminal and one PNG (latency over rate, throughput over time, CPU)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

# Where we want to end (docs/architecture.md): 200/s; at 100/s end to end p50 <= 25 ms, p99 <= 60 ms.
TARGET_P50_MS, TARGET_P99_MS, TARGET_RATE = 25, 60, 200
# The goals a run must meet (issue 15): 150/s sustained; at 50/s end to end p99 <= 100 ms, POST p99 <= 30 ms.
GOAL_RATE, GOAL_LATENCY_RATE, GOAL_E2E_P99_MS, GOAL_POST_P99_MS = 150, 50, 100, 30


def _steps_table(steps: list[dict]) -> None:
    print(
        f"{'rate/s':>7} {'sent/s':>7} {'decided/s':>9} {'POST p50':>9} {'p99':>7} "
        f"{'e2e p50':>8} {'p95':>7} {'p99':>7} {'EMERG p50':>9} {'SCHED p50':>9} {'lag p99':>8} {'cores':>6} "
        f"{'stolen':>6} {'ms CPU/req':>10} ok"
    )
    for s in steps:
        e2e, post = s["e2e_latency_ms"], s["post_latency_ms"]
        procs = s.get("processes", {})
        print(
            f"{s['offered_rate']:>7g} {s['sent_rate']:>7} {s['decision_rate'] or 0:>9} "
            f"{post['p50']:>9} {post['p99']:>7} "
            f"{e2e['ALL']['p50']:>8} {e2e['ALL']['p95']:>7} {e2e['ALL']['p99']:>7} "
            f"{e2e['EMERGENCY']['p50']:>9} {e2e['SCHEDULED']['p50']:>9} {s['client_lag_ms']['p99']:>8} "
            f"{procs.get('cpu_cores_machine') or 0:>6} {procs.get('cpu_cores_stolen') or 0:>6} "
            f"{procs.get('cpu_ms_per_request_system') or 0:>10} "
            f"{'yes' if s['sustained'] else 'NO'}"
        )


def print_table(results: dict) -> None:
    machine = results.get("machine") or {}
    if machine.get("cpu_model"):  # figures of different hosts are not comparable
        print(f"\nmachine: {machine['cpus']} cores, {machine['cpu_model']}")
    if results["steps"]:
        print("\nthe whole system")
        _steps_table(results["steps"])
        print(f"\nmaximum sustained rate: {results['max_sustained_rate']} requests/s (target >= {TARGET_RATE})")
        _print_goals(results)
        _print_system_extras(results)
        print_work(results["steps"])
    bare = results.get("baseline")
    if bare:
        print("\nthe bare pipeline (bench/baseline.py)")
        _steps_table(bare["steps"])
        print(f"\nbare pipeline: maximum sustained rate {bare['max_sustained_rate']} requests/s")
        print_work(bare["steps"])
    versus = results.get("full_vs_bare")
    if versus:
        _print_versus(versus)


def _latency_step(results: dict) -> dict | None:
    """The step the latency goals are judged at (None: the ramp had none)."""
    return next((s for s in results["steps"] if s["offered_rate"] == GOAL_LATENCY_RATE), None)


def goals_met(results: dict) -> dict[str, bool | None]:
    """Each goal of a run: met, not met, or None when the run has no step to judge it by (a shorter ramp)."""
    at = _latency_step(results)
    return {
        "sustained_rate": (results["max_sustained_rate"] or 0) >= GOAL_RATE,
        "e2e_p99": None if at is None else at["e2e_latency_ms"]["ALL"]["p99"] <= GOAL_E2E_P99_MS,
        "post_p99": None if at is None else at["post_latency_ms"]["p99"] <= GOAL_POST_P99_MS,
    }


def _print_goals(results: dict) -> None:
    verdict = {True: "met", False: "NOT met", None: "no step"}
    met, at = goals_met(results), _latency_step(results)
    e2e = f"{at['e2e_latency_ms']['ALL']['p99']} ms" if at else "-"
    post = f"{at['post_latency_ms']['p99']} ms" if at else "-"
    print(
        f"goals: sustained >= {GOAL_RATE}/s {verdict[met['sustained_rate']]}; at {GOAL_LATENCY_RATE}/s "
        f"end to end p99 {e2e} (<= {GOAL_E2E_P99_MS}) {verdict[met['e2e_p99']]}, "
        f"POST p99 {post} (<= {GOAL_POST_P99_MS}) {verdict[met['post_p99']]}"
    )


def _print_system_extras(results: dict) -> None:
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
            f"other processes {procs['cpu_cores_other_processes']}, stolen by the hypervisor "
            f"{procs.get('cpu_cores_stolen', 0)}):"
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


def print_work(steps: list[dict]) -> None:
    """Statements and messages per request, counted (``bench/work.py``): each step, then the top statements."""
    counted = [s for s in steps if s.get("work_per_request")]
    if not counted:
        return
    if not counted[0]["work_per_request"]["statements_counted"]:
        print("\nwork per request: statements not counted (pg_stat_statements not loaded)")
    databases = sorted({db for s in counted for db in s["work_per_request"]["statements"]})
    print("\nwork per request (counted, not timed): SQL statements per database, Kafka messages")
    print(
        f"{'rate/s':>7} {'statements':>10} "
        + " ".join(f"{db.removeprefix('postgres: '):>12}" for db in databases)
        + f" {'messages':>8}"
    )
    for s in counted:
        work = s["work_per_request"]
        print(
            f"{s['offered_rate']:>7g} {work['statements_total']:>10} "
            + " ".join(f"{work['statements'].get(db, 0):>12}" for db in databases)
            + f" {work['messages_total']:>8}"
        )
    top = counted[-1]["work_per_request"]
    print(
        f"at {counted[-1]['offered_rate']:g}/s, messages per topic: "
        + ", ".join(f"{topic} {n}" for topic, n in top["messages"].items())
    )
    print("the most frequent statements (per request):")
    for row in top["top_statements"]:
        print(f"  {row['per_request']:>6} {row['database'].removeprefix('postgres: '):<10} {row['query']}")


def _print_versus(versus: dict) -> None:
    full, bare = versus["full"], versus["bare"]
    top = " (every bare step sustained: the ramp's top, not its limit)" if versus["bare_sustained_every_step"] else ""
    print(
        f"\nfull / bare: maximum sustained rate {full['max_sustained_rate']} / {bare['max_sustained_rate']} "
        f"= {versus['max_sustained_rate']}{top}"
    )
    full_cpu, bare_cpu = full["cpu_ms_per_request"], bare["cpu_ms_per_request"]
    if not (full_cpu and bare_cpu):
        print("CPU per request: no rate sustained by both")
        return
    print(
        f"CPU per request at {versus['at_rate']:g}/s (the highest rate both sustained; bench client left out): "
        f"{full_cpu['total']} / {bare_cpu['total']} ms = {versus['cpu_ms_per_request']}"
    )
    groups = sorted(
        set(full_cpu["by_group"]) | set(bare_cpu["by_group"]), key=lambda g: -full_cpu["by_group"].get(g, 0)
    )
    print(f"  {'process group':<24} {'full ms':>8} {'bare ms':>8}")
    for group in groups:
        print(f"  {group:<24} {full_cpu['by_group'].get(group, '-'):>8} {bare_cpu['by_group'].get(group, '-'):>8}")


def _title(results: dict) -> str:
    title = f"make bench: {results['label']}"
    versus, bare = results.get("full_vs_bare"), results.get("baseline")
    if versus:
        title += (
            f"\nmax sustained: full {versus['full']['max_sustained_rate']}/s, bare "
            f"{versus['bare']['max_sustained_rate']}/s (full/bare {versus['max_sustained_rate']})"
        )
        if versus["cpu_ms_per_request"] is not None:
            title += f"; CPU per request full/bare {versus['cpu_ms_per_request']} at {versus['at_rate']:g}/s"
    elif bare:
        title += f" (bare pipeline only: max sustained {bare['max_sustained_rate']}/s)"
    else:
        title += f" (max sustained {results['max_sustained_rate']}/s)"
    return title


def plot(results: dict, path: Path) -> None:
    steps = results["steps"]
    bare, versus = results.get("baseline"), results.get("full_vs_bare")
    compared = bool(versus and versus["full"]["cpu_ms_per_request"] and versus["bare"]["cpu_ms_per_request"])
    panels = 5 if compared else 4
    fig, axes = plt.subplots(panels, 1, figsize=(10, 4.2 * panels), layout="constrained")
    fig.suptitle(_title(results))
    _plot_latency(axes[0], steps, bare)
    _plot_throughput(axes[1], results.get("timeline"), bare)
    _plot_cpu(axes[2], steps or (bare or {}).get("steps", []), "whole system" if steps else "bare pipeline")
    _plot_cpu_per_request(axes[3], steps, bare)
    if compared:
        _plot_cpu_by_group(axes[4], versus)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_latency(ax: plt.Axes, steps: list[dict], bare: dict | None) -> None:
    curves = [("", steps, ("C0", "C1"))] if steps else []
    if bare:
        curves.append(("bare ", bare["steps"], ("C2", "C3")))
    for prefix, series, (e2e_color, post_color) in curves:
        rates = [s["offered_rate"] for s in series]
        for q, style in (("p50", "-o"), ("p95", "--o"), ("p99", ":o")):
            ax.plot(
                rates,
                [s["e2e_latency_ms"]["ALL"][q] for s in series],
                style,
                color=e2e_color,
                label=f"{prefix}end to end {q}",
            )
            ax.plot(
                rates, [s["post_latency_ms"][q] for s in series], style, color=post_color, label=f"{prefix}POST {q}"
            )
    ax.scatter(
        [100, 100],
        [TARGET_P50_MS, TARGET_P99_MS],
        marker="x",
        color="red",
        zorder=5,
        label="targets at 100/s (p50 25, p99 60 ms)",
    )
    for s in steps:
        if not s["sustained"]:
            ax.axvspan(s["offered_rate"] - 10, s["offered_rate"] + 10, color="red", alpha=0.1)
    ax.set(
        xlabel="offered rate (requests/s)",
        ylabel="latency (ms, log)",
        yscale="log",
        title="latency over rate (red band: the whole system did not sustain it)",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2 if not bare else 4)


def _plot_throughput(ax: plt.Axes, series: dict | None, bare: dict | None) -> None:
    if series:
        ax.plot(series["seconds"], series["sent_per_s"], color="C1", label="requests sent/s")
        ax.plot(series["seconds"], series["decided_per_s"], color="C0", label="decisions stored at hospital/s")
    if bare:
        ax.plot(
            bare["timeline"]["seconds"],
            bare["timeline"]["sent_per_s"],
            color="C3",
            alpha=0.7,
            label="bare: requests sent/s",
        )
        ax.plot(
            bare["timeline"]["seconds"], bare["timeline"]["decided_per_s"], color="C2", label="bare: decisions stored/s"
        )
    ax.set(
        xlabel="seconds since the ramp started (each its own ramp)", ylabel="per second", title="throughput over time"
    )
    ax_backlog = ax.twinx()
    for name, timeline, color in (("", series, "grey"), ("bare: ", (bare or {}).get("timeline"), "olive")):
        if timeline:
            backlog = timeline["backlog"]
            ax_backlog.plot(
                [b["t"] for b in backlog],
                [b["pending"] for b in backlog],
                color=color,
                alpha=0.6,
                label=f"{name}backlog (PENDING)",
            )
    ax_backlog.set_ylabel("backlog (requests PENDING)")
    lines, more = ax.get_legend_handles_labels(), ax_backlog.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="upper left")
    ax.grid(True, alpha=0.3)


def _plot_cpu(ax: plt.Axes, steps: list[dict], what: str) -> None:
    rates = [str(int(s["offered_rate"])) for s in steps]
    groups = sorted({g for s in steps for g in s.get("processes", {}).get("cpu_cores", {})})
    bottom = [0.0] * len(steps)
    for index, group in enumerate(groups):
        values = [s.get("processes", {}).get("cpu_cores", {}).get(group, 0.0) for s in steps]
        ax.bar(rates, values, bottom=bottom, label=group, color=f"C{index % 10}", hatch="//" if index >= 10 else None)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    other = [s.get("processes", {}).get("cpu_cores_other_processes", 0.0) for s in steps]
    ax.bar(rates, other, bottom=bottom, label="other processes (not the bench)", color="lightgrey")
    bottom = [b + v for b, v in zip(bottom, other, strict=True)]
    stolen = [s.get("processes", {}).get("cpu_cores_stolen", 0.0) for s in steps]
    ax.bar(rates, stolen, bottom=bottom, label="stolen by the hypervisor", color="black", alpha=0.3)
    ax.axhline(2.0, color="red", linewidth=1)
    ax.set(
        xlabel="offered rate (requests/s)",
        ylabel="CPU (cores; the machine has 2)",
        title=f"CPU per process group while sending: {what}",
    )
    ax.legend(fontsize=7, ncol=3)


def _plot_cpu_per_request(ax: plt.Axes, steps: list[dict], bare: dict | None) -> None:
    for name, series, color in (("whole system", steps, "C0"), ("bare pipeline", (bare or {}).get("steps", []), "C2")):
        measured = [s for s in series if s.get("processes")]
        if measured:
            ax.plot(
                [s["offered_rate"] for s in measured],
                [s["processes"]["cpu_ms_per_request_system"] for s in measured],
                "-o",
                color=color,
                label=name,
            )
    ax.set(
        xlabel="offered rate (requests/s)",
        ylabel="ms of CPU per request (log)",
        yscale="log",
        title="CPU per request, every process of the system (bench client left out)",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def _plot_cpu_by_group(ax: plt.Axes, versus: dict) -> None:
    full, bare = versus["full"]["cpu_ms_per_request"], versus["bare"]["cpu_ms_per_request"]
    groups = sorted(set(full["by_group"]) | set(bare["by_group"]), key=lambda g: full["by_group"].get(g, 0))
    where = range(len(groups))
    ax.barh(
        [y + 0.2 for y in where],
        [full["by_group"].get(g, 0) for g in groups],
        0.4,
        color="C0",
        label=f"whole system: {full['total']} ms",
    )
    ax.barh(
        [y - 0.2 for y in where],
        [bare["by_group"].get(g, 0) for g in groups],
        0.4,
        color="C2",
        label=f"bare pipeline: {bare['total']} ms",
    )
    ax.set_yticks(list(where), groups, fontsize=8)
    ax.set(
        xlabel="ms of CPU per request",
        title=f"CPU per request by process group at {versus['at_rate']:g}/s (the highest rate both sustained)",
    )
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8)
